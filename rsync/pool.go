package rsync

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

// smallFile is the size up to which a file sent whole is collected in memory and
// written by the pool: creating files is most of the cost of a cold sync of many small
// files, and the pool does it on several cores while the walk goes on reading.
const smallFile = 256 << 10

// writeJob is one small file, complete, to write.
type writeJob struct {
	p     *pending
	index uint64
	data  []byte
	sum   []byte
}

// writePool writes small files on a few goroutines. Memory: its queue and the jobs in
// progress, at most (queue + workers) × 2 × smallFile.
type writePool struct {
	r    *treeReceiver
	jobs chan *writeJob
	wg   sync.WaitGroup
	bufs sync.Pool

	mu  sync.Mutex
	err error
}

func newWritePool(r *treeReceiver, workers int) *writePool {
	p := &writePool{r: r, jobs: make(chan *writeJob, 8)}
	p.bufs.New = func() any { b := make([]byte, 0, 64<<10); return &b }
	for range workers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

func (p *writePool) getBuf() []byte { return (*p.bufs.Get().(*[]byte))[:0] }

func (p *writePool) putBuf(b []byte) {
	if cap(b) <= 2*smallFile {
		p.bufs.Put(&b)
	}
}

func (p *writePool) work() {
	defer p.wg.Done()
	dirs := dirCache{root: p.r.root}
	defer dirs.closeAll()
	for j := range p.jobs {
		if p.Err() == nil {
			if err := p.write(&dirs, j); err != nil {
				p.fail(err)
			}
		}
		p.putBuf(j.data)
	}
}

func (p *writePool) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

// Err is the first error of a write.
func (p *writePool) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// submit queues j; it fails with the pool's first error, if any.
func (p *writePool) submit(ctx context.Context, j *writeJob) error {
	select {
	case p.jobs <- j:
	case <-ctx.Done():
		p.putBuf(j.data)
		return ctx.Err()
	}
	return p.Err()
}

// finish waits for the queued jobs and returns the first error.
func (p *writePool) finish() error {
	close(p.jobs)
	p.wg.Wait()
	return p.Err()
}

func (p *writePool) write(dirs *dirCache, j *writeJob) error {
	if sum := sha256.Sum256(j.data); string(sum[:]) != string(j.sum) {
		return fmt.Errorf("rsync: %s: SHA-256 of the received file does not match the sender's", j.p.path)
	}
	dir, err := dirs.get(parentOf(j.p.path))
	if err != nil {
		return err
	}
	name := baseOf(j.p.path)
	tmp := tempName(p.r.token, name)
	f, err := dir.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(j.data)
	if err == nil {
		err = f.Chmod(fileMode(j.p.mode))
	}
	if err == nil && p.r.fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = dir.Chtimes(tmp, time.Time{}, time.Unix(0, j.p.mtime))
	}
	if err == nil {
		err = p.r.replace(dir, tmp, name, j.p.path, j.p.dirInWay)
	}
	if err != nil {
		dir.Remove(tmp)
		return err
	}
	p.r.written.Add(1)
	return nil
}

// poolWorkers is the size of the pool: creating files in one file system hardly goes
// faster on more cores (the kernel serializes much of it), but it overlaps with
// receiving and decompressing on its own goroutine; half the cores, 1 to 4.
func poolWorkers() int { return min(max(runtime.NumCPU()/2, 1), 4) }
