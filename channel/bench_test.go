package channel

import (
	"context"
	"io"
	"testing"
)

// The Process benchmarks run against the test binary re-executed as a peer
// (see TestMain), over two OS pipes. See BENCH.md.

type benchMsg struct {
	Seq  int
	Kind string
}

func BenchmarkProcessRoundTrip(b *testing.B) {
	ctx := context.Background()
	s := startPeer(b, nil)
	ch, err := s.Open(ctx, "echo")
	if err != nil {
		b.Fatal(err)
	}
	msg := benchMsg{Seq: 1, Kind: "ping"}
	var got benchMsg
	// Warm up.
	for i := 0; i < 100; i++ {
		ch.Send(ctx, msg)
		ch.Receive(ctx, &got)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg.Seq = i
		if err := ch.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if err := ch.Receive(ctx, &got); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got.Seq != b.N-1 {
		b.Fatalf("got seq %d", got.Seq)
	}
}

func BenchmarkProcessStream(b *testing.B) {
	ctx := context.Background()
	s := startPeer(b, nil)
	ch, err := s.Open(ctx, "sink")
	if err != nil {
		b.Fatal(err)
	}
	msg := benchMsg{Seq: 1, Kind: "item"}
	run := func(n int) {
		if err := ch.Send(ctx, n); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < n; i++ {
			msg.Seq = i
			if err := ch.Send(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
		var ack int
		if err := ch.Receive(ctx, &ack); err != nil || ack != n {
			b.Fatal(ack, err)
		}
	}
	run(1000)
	b.ReportAllocs()
	b.ResetTimer()
	run(b.N)
}

func BenchmarkProcessBulk(b *testing.B) {
	ctx := context.Background()
	s := startPeer(b, nil)
	ch, err := s.Open(ctx, "sink")
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i)
	}
	run := func(n int) {
		if err := ch.Send(ctx, n); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := ch.Send(ctx, payload); err != nil {
				b.Fatal(err)
			}
		}
		var ack int
		if err := ch.Receive(ctx, &ack); err != nil || ack != n {
			b.Fatal(ack, err)
		}
	}
	run(4)
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	run(b.N)
}

// The RawPipe benchmarks measure the same exchanges over the same kind of
// pipes between the same two processes without this package: the floor
// the Process benchmarks are measured against.

func BenchmarkRawPipeRoundTrip(b *testing.B) {
	rwc := startPeerProcess(b, "rawecho")
	buf := make([]byte, 28) // the size of a benchMsg frame
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := rwc.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(rwc, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	rwc.Close()
}

func BenchmarkRawPipeBulk(b *testing.B) {
	rwc := startPeerProcess(b, "rawecho")
	payload := make([]byte, 1<<20)
	b.SetBytes(1 << 20)
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := rwc.Write(payload); err != nil {
				return
			}
		}
	}()
	if _, err := io.ReadFull(rwc, make([]byte, b.N)); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	rwc.Close()
}
