package report

import (
	"sort"
	"strings"

	"github.com/godist/godist/gotest"
)

// verboseView is the -v output: every line of every test, shaped as go test -v prints
// it, although the test binaries run with -test.v=test2json and a package's tests may be
// split over several processes and workers.
//
//   - A subtest's result line ("--- PASS: TestA/sub (0.00s)") is held until its
//     top-level test's result line, which it then follows, indented four spaces a level
//     as go test -v nests it (children in the order they ended): test2json mode prints
//     each as the subtest ends, unindented.
//   - A stream is one worker's output for one package. One stream is live, printed as it
//     comes; the others are held, so that a package's output is never interleaved with
//     another package's, nor one process's with another's. A package run (a package; in
//     each mode, a package on one worker) is printed whole when it ends: its held streams
//     in the order they started, then its closing lines (the "PASS" or "FAIL" the ledger
//     writes at its end, and what follows it), then its result line. A run that ends
//     while another is live waits for that one's end; then the oldest held stream
//     becomes live.
//   - "=== NAME  TestX" introduces a test's line when the line printed before it came
//     from another test, as go test -v does where tests take turns.
//
// It is not safe for concurrent use; the Reporter guards it.
type verboseView struct {
	each  bool
	print func(string) // writes one permanent line

	lines   lineBuffer
	streams map[srcKey]*vstream
	seq     int
	live    *vstream
	last    testSrc // where the last printed test line came from
	// closing holds, by package run, the lines from the package's own "PASS" or "FAIL"
	// line on: they come just before its result line.
	closing map[srcKey][]string
	done    [][]keyedLine // runs that ended while another was live, in the order they ended
}

// vstream is one worker's output of one package.
type vstream struct {
	key  srcKey
	seq  int
	out  []vline            // lines not yet printed (while not live)
	held map[string][]vline // subtest result lines by top-level test, in the order they ended
}

// vline is one line to print: the test it belongs to ("" for the package's own) and
// whether it is framing (never introduced by "=== NAME").
type vline struct {
	test, text string
	frame      bool
}

// keyedLine is a line and its stream.
type keyedLine struct {
	key srcKey
	vline
}

func newVerboseView(each bool, print func(string)) *verboseView {
	return &verboseView{each: each, print: print, streams: map[srcKey]*vstream{}, closing: map[srcKey][]string{}}
}

// run is the package run a stream belongs to: the package, and in each mode the worker.
func (v *verboseView) run(k srcKey) srcKey {
	if !v.each {
		k.worker = ""
	}
	return k
}

func (v *verboseView) stream(k srcKey) *vstream {
	s := v.streams[k]
	if s == nil {
		v.seq++
		s = &vstream{key: k, seq: v.seq, held: map[string][]vline{}}
		v.streams[k] = s
	}
	return s
}

// output takes an output event (not a package's result line, which end takes).
func (v *verboseView) output(e gotest.Event) {
	k := srcKey{worker: e.Worker, pkg: e.Package}
	s := v.stream(k)
	for _, text := range v.lines.add(k, e.Output) {
		v.line(s, e.Test, text)
	}
}

// line takes one whole line of stream s.
func (v *verboseView) line(s *vstream, test, text string) {
	run := v.run(s.key)
	if test == "" {
		if _, ok := v.closing[run]; ok || text == "PASS" || text == "FAIL" {
			v.closing[run] = append(v.closing[run], text)
			return
		}
	}
	ls := []vline{{test: test, text: text, frame: isFramingLine(text)}}
	if name, ok := resultLineOf(test, text); ok {
		top, _, sub := strings.Cut(name, "/")
		if sub {
			s.held[top] = append(s.held[top], ls[0])
			return
		}
		ls = append(ls, subtestTree(top, s.held[top])...)
		delete(s.held, top)
	}
	if v.live == nil {
		v.live = s
	}
	if v.live != s {
		s.out = append(s.out, ls...)
		return
	}
	for _, l := range ls {
		v.emit(keyedLine{s.key, l})
	}
}

// emit prints a line, introduced by "=== NAME" when the line before came from another
// test.
func (v *verboseView) emit(l keyedLine) {
	if l.test != "" {
		src := testSrc{l.key.pkg, l.test, l.key.worker}
		if src != v.last && v.last != (testSrc{}) && !l.frame {
			v.print("=== NAME  " + l.test)
		}
		v.last = src
	}
	v.print(l.text)
}

func (v *verboseView) emitAll(ls []keyedLine) {
	for _, l := range ls {
		v.emit(l)
	}
}

// end takes the result line of a package run that ended (worker matters in each mode
// only). The run is printed now if it is live (or none is), followed by the runs that
// ended meanwhile, and the oldest held stream becomes live; else it waits for the live
// run's end.
func (v *verboseView) end(pkg, worker, result string) {
	run := v.run(srcKey{worker: worker, pkg: pkg})
	block, wasLive := v.take(func(k srcKey) bool { return v.run(k) == run })
	for _, text := range v.closing[run] {
		block = append(block, keyedLine{vline: vline{text: text}})
	}
	delete(v.closing, run)
	block = append(block, keyedLine{vline: vline{text: result}})
	if !wasLive && v.live != nil {
		v.done = append(v.done, block)
		return
	}
	v.live = nil
	v.emitAll(block)
	for _, b := range v.done {
		v.emitAll(b)
	}
	v.done = nil
	v.next()
}

// next makes the oldest stream that holds lines live, printing them.
func (v *verboseView) next() {
	var oldest *vstream
	for _, s := range v.streams {
		if len(s.out) > 0 && (oldest == nil || s.seq < oldest.seq) {
			oldest = s
		}
	}
	if oldest == nil {
		return
	}
	v.live = oldest
	for _, l := range oldest.out {
		v.emit(keyedLine{oldest.key, l})
	}
	oldest.out = nil
}

// close prints everything still held, the live run's first: the run is over.
func (v *verboseView) close() {
	if v.live != nil {
		run := v.run(v.live.key)
		block, _ := v.take(func(k srcKey) bool { return v.run(k) == run })
		v.emitAll(block)
	}
	for _, b := range v.done {
		v.emitAll(b)
	}
	v.done = nil
	block, _ := v.take(func(srcKey) bool { return true })
	v.emitAll(block)
	runs := make([]srcKey, 0, len(v.closing))
	for run := range v.closing {
		runs = append(runs, run)
	}
	sort.Slice(runs, func(i, j int) bool { return lessKey(runs[i], runs[j]) })
	for _, run := range runs {
		for _, text := range v.closing[run] {
			v.emit(keyedLine{vline: vline{text: text}})
		}
		delete(v.closing, run)
	}
}

// take removes the matching streams and returns what they hold, in the order they
// started: their held lines, their unfinished lines, and the subtest result lines of
// top-level tests that never reported their own. wasLive reports whether the live stream
// was one of them.
func (v *verboseView) take(match func(srcKey) bool) (ls []keyedLine, wasLive bool) {
	var ss []*vstream
	for k, s := range v.streams {
		if match(k) {
			ss = append(ss, s)
		}
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].seq < ss[j].seq })
	for _, s := range ss {
		for _, l := range s.out {
			ls = append(ls, keyedLine{s.key, l})
		}
		for _, text := range v.lines.flush(func(k srcKey) bool { return k == s.key }) {
			ls = append(ls, keyedLine{s.key, vline{text: text}})
		}
		tops := make([]string, 0, len(s.held))
		for top := range s.held {
			tops = append(tops, top)
		}
		sort.Strings(tops)
		for _, top := range tops {
			for _, l := range subtestTree(top, s.held[top]) {
				ls = append(ls, keyedLine{s.key, l})
			}
		}
		delete(v.streams, s.key)
		if v.live == s {
			v.live, wasLive = nil, true
		}
	}
	return ls, wasLive
}

func lessKey(a, b srcKey) bool {
	if a.pkg != b.pkg {
		return a.pkg < b.pkg
	}
	return a.worker < b.worker
}

// resultLineOf reports whether text is test's own result line ("--- PASS: TestA/sub
// (0.00s)"), and the test it names.
func resultLineOf(test, text string) (string, bool) {
	if test == "" {
		return "", false
	}
	for _, p := range []string{"--- PASS: ", "--- FAIL: ", "--- SKIP: "} {
		if rest, ok := strings.CutPrefix(text, p); ok && strings.HasPrefix(rest, test+" (") {
			return test, true
		}
	}
	return "", false
}

// isFramingLine reports whether a line is one of the testing package's markers, which
// "=== NAME" never introduces.
func isFramingLine(text string) bool {
	return strings.HasPrefix(text, "=== ") || strings.HasPrefix(text, "--- ")
}

// subtestTree nests the result lines of top's subtests, given in the order they ended, as
// go test -v prints them after top's own: each subtest after its parent, its children in
// the order they ended, indented four spaces a level. A subtest's parent is the subtest
// with the longest name that prefixes its own and ended after it (a parent ends after
// its children), else top.
func subtestTree(top string, nodes []vline) []vline {
	if len(nodes) == 0 {
		return nil
	}
	byName := map[string][]int{}
	for i, n := range nodes {
		byName[n.test] = append(byName[n.test], i)
	}
	children := map[int][]int{} // by parent index; -1 is top
	for i, n := range nodes {
		parent := -1
	search:
		for j := len(n.test) - 1; j > len(top); j-- {
			if n.test[j] != '/' {
				continue
			}
			for _, p := range byName[n.test[:j]] {
				if p > i {
					parent = p
					break search
				}
			}
		}
		children[parent] = append(children[parent], i)
	}
	out := make([]vline, 0, len(nodes))
	var walk func(parent int, indent string)
	walk = func(parent int, indent string) {
		for _, i := range children[parent] {
			out = append(out, vline{test: top, text: indent + nodes[i].text, frame: true})
			walk(i, indent+"    ")
		}
	}
	walk(-1, "    ")
	return out
}
