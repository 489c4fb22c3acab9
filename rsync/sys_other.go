//go:build !unix

package rsync

import "io/fs"

// oNoFollow: there is no such flag here; an open follows a symbolic link. Only the sender
// runs on such systems (a worker, and so a receiver, refuses to start there): it opens
// what its walk found to be regular files, and would follow one replaced by a symbolic
// link since.
const oNoFollow = 0

// devIno: no device and inode here; placeID is "" then.
func devIno(fs.FileInfo) (dev, ino uint64, ok bool) { return 0, 0, false }
