// Package rsync syncs a local directory tree to directories on many workers at once, over
// channels (see package channel), and stores files in workers' content-addressed blob
// caches. It is godist's answer to execnet's RSync and pytest-xdist's --rsyncdir: it
// streams (memory stays bounded whatever the file size), sends changed files as
// rolling-checksum deltas (the rsync algorithm), costs about one round trip when nothing
// changed, compresses with zstd where that helps, replaces each file atomically, deletes
// only what it wrote itself (unless told otherwise) and never what its filter excludes,
// refuses destinations it could wreck (/, $HOME, the godist cache root), fails on
// entries it cannot carry rather than leaving them out in silence, and never writes
// outside the destination whatever the sender says.
//
// # Use
//
// The worker side is Receiver, a worker.Func registered under ReceiverFunc (cmd/godist's
// worker does it). The master side:
//
//	open := func(ctx context.Context) (*channel.Channel, error) { return gw.RemoteExec(ctx, rsync.ReceiverFunc) }
//	stats, err := rsync.Sync(ctx, "path/to/module", []rsync.Dest{{Name: gw.ID, Open: open, Path: "work/module"}},
//		rsync.Options{Exclude: patterns, Compress: true})
//
//	// A test binary, into the worker's blob cache, as a delta against the last one of its name:
//	remote, st, err := rsync.PutBlob(ctx, open, "bin/pkg.test", rsync.BlobOptions{Name: "pkg.test of example.com/pkg", Compress: true})
//
// Sync walks the tree once and syncs every destination concurrently. Destinations that
// are the same directory on the same machine (gateways sharing a host) are detected from
// the receivers' answers and synced once (Stats.SameAs), so a caller may pass every
// gateway; where a receiver's machine has neither a boot id nor a writable cache, pass one
// destination per host and directory. GitIgnorePatterns turns a tree's .gitignore files
// into Exclude patterns.
//
// # How a sync goes
//
// The sender sends the manifest — path, kind, mode, size and mtime of every entry — in a
// few messages. The receiver compares it with its directory: directories are made,
// entries the source does not have are deleted if they may be (see below), modes are
// fixed, and each
// file whose size or mtime differs is asked for, with the block signatures (weak rolling
// checksum and truncated SHA-256, blocks of about the square root of the file size) of
// the old copy if there is one. The sender answers each need as it comes: it slides a
// window over the new file, rolling the weak checksum one byte at a time, and sends
// references to the blocks the receiver has and the rest as literal data, zstd-compressed
// per message when that makes it smaller. The receiver writes each file to a temp file
// next to its place, checks its SHA-256, sets mode and mtime, and renames it into place.
// PROTOCOL.md has the wire format.
//
// # Nothing destroyed
//
// A sync overwrites the destination's entries at the paths the source has. What the
// source does not have it deletes only where an earlier sync wrote it: each sync leaves
// a marker at the top of the destination, .godist-sync, naming the entries it wrote
// (the manifest), and the next sync deletes the entries the marker names that the
// source no longer has. Everything else stays, counted in Stats.Kept: in a directory
// without a marker (no sync wrote there) nothing is deleted at all, and Stats.Owned is
// false; the sync then leaves its marker, so the directory is godist's from then on, but
// what godist did not write still stays. Options.Delete deletes every entry the source
// lacks, whoever wrote it (rsync --delete). Entries the exclude patterns match are never
// deleted. A directory where the source has a file or symlink is removed only if all
// that is in it may be deleted; else the sync fails, naming it. The marker is written
// atomically, only when what it names changes, and is never sent, compared or deleted
// as an entry (a source's own marker, and temp files of this package, stay home).
//
// The receiver refuses (*RefusedError, before it writes anything) a destination that,
// resolved as the kernel would (symlinks followed, ".." to the parent of where the path
// has got), is /, $HOME, the godist cache root ${XDG_CACHE_HOME:-$HOME/.cache}/godist or
// a directory holding one of them; a relative destination whose ".." components climb
// out of its working directory ("..", "a/../../b", "link/.." where link leads out); and
// a destination whose .godist-sync is not a marker of this package.
//
// An entry of the source that cannot be synced — a socket, a device, a named pipe, a
// path more than 256 directories deep or longer than 4096 bytes, a file that cannot be
// read — fails the sync with an *EntryError naming it, before the manifest is sent (a
// file unreadable when its data is asked for fails the sync then), unless Options.Warn
// is set: then it is reported there and skipped. Any other name is carried as it is: a
// newline, control characters, ':' and '\' are legal in POSIX names.
//
// Memory: messages of at most a few hundred KiB, a window of about 2 blocks + 384 KiB on
// the sender, the signature of one file (at most 8 MiB, whatever its size), plus O(number
// of entries) for the manifest. A 200 MiB file syncs in under 30 MiB of heap, sender and
// receiver together (TestLargeFileBoundedMemory).
//
// # Safety on the receiver
//
// Every path of the manifest must be clean, relative, without ".." or NUL, within the
// limits, in strict walk order, and have as parent a directory of the same manifest,
// which the receiver has checked is a real directory (a symlink there is replaced by a
// directory, never followed). Receivers are POSIX systems, where no other byte of a name
// can leave a directory. So no path goes through a symlink, not
// even one this sync made. All writes go through an os.Root of the destination. Symlinks
// are kept as symlinks, with their targets as they are; the receiver never follows one.
// A transfer cut off mid-file leaves no partial file in place; temp files are removed on
// error, and those of a receiver that was killed by the next sync of their directory.
//
// # Performance
//
// Against rsync 3.5 over one real sshd, on a tree of 1500 Go source files and two Go test
// binaries (21 MB), `godist rsync --tx ssh=HOST` and `rsync -a --delete -e ssh` timed as
// whole commands, medians of 7 rounds on the 2-core development machine (bench/RSYNC.md):
//
//	phase                          godist              rsync -a
//	cold                           389 ms, 9.7 MB      540 ms, 20.6 MB
//	binary rebuilt, 15 edits       148 ms, 44.7 KB     294 ms, 105 KB
//	nothing changed                120 ms, 15.3 KB     272 ms, 36.7 KB
//
// Reproduce with
//
//	bash bench/rsync.sh
package rsync
