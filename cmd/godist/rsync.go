package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/godist/godist/channel"
	"github.com/godist/godist/gateway"
	"github.com/godist/godist/rsync"
	"github.com/godist/godist/runner"
	"github.com/godist/godist/xspec"
)

// rsyncResult is one gateway's line of `godist rsync --json`.
type rsyncResult struct {
	ID        string `json:"id"`
	Spec      string `json:"spec"`
	Files     int    `json:"files"`
	FilesSent int    `json:"files_sent"`
	Deleted   int    `json:"deleted"`
	// Kept counts the entries of DESTDIR that SRCDIR lacks and that stayed (see --delete).
	Kept int `json:"kept"`
	// Owned: DESTDIR held the sync marker of an earlier godist sync.
	Owned bool `json:"owned"`
	// BytesSent is what the sync wrote to the gateway's transport (messages and framing).
	BytesSent int64 `json:"bytes_sent"`
	// SameAs names the gateway that synced the same directory on the same machine.
	SameAs string `json:"same_as,omitempty"`
	MS     int64  `json:"ms"`
	Error  string `json:"error,omitempty"`
}

type rsyncOptions struct {
	tx         []string
	asJSON     bool
	exclude    []string
	noCompress bool
	delete     bool
}

func newRsyncCommand(stdout io.Writer) *cobra.Command {
	var o rsyncOptions
	cmd := &cobra.Command{
		Use:   "rsync [--json] [--delete] [--exclude PATTERN]... --tx SPEC... SRCDIR DESTDIR",
		Short: "Make DESTDIR on every gateway a copy of the local SRCDIR",
		Long: `rsync makes DESTDIR on every gateway (relative: to the gateway's working directory) a copy
of the local directory SRCDIR: files, directories, modes and symlinks, whatever bytes
their names hold (a newline, ':' and '\' included). Changed files travel as
rolling-checksum deltas; a directory on a host that several gateways share is synced once.

Nothing is destroyed unasked:
  - Files of DESTDIR at the paths SRCDIR has are overwritten. Entries SRCDIR lacks are
    deleted only if an earlier godist sync wrote them: each sync leaves a marker,
    DESTDIR/.godist-sync, naming what it wrote. In a directory no godist sync wrote
    before, nothing is deleted, and godist says how many extra entries it kept; after
    that sync the directory is godist's, but what godist did not write still stays.
  - --delete deletes every entry SRCDIR lacks, whoever wrote it (rsync --delete).
  - Entries matching an --exclude pattern (gitignore syntax) are neither sent nor deleted.
  - DESTDIR may not be /, $HOME, the godist cache root (${XDG_CACHE_HOME:-$HOME/.cache}/godist)
    or a directory holding one of them, as the gateway resolves it (symlinks and ".."
    followed); a relative DESTDIR may not climb out of the gateway's working directory
    ("..", "a/../../b"). Either is bad usage (exit status 2), refused before anything is
    written.
  - An entry of SRCDIR that cannot be synced (a socket, device or named pipe, a path more
    than 256 directories deep or longer than 4096 bytes, a file it cannot read) is an
    error naming it (exit status 2): exclude it to sync the rest.

Exit status: 0 synced everywhere; 2 bad usage, a refused DESTDIR or an entry that
cannot be synced; 3 a gateway did not come up or its sync failed.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("rsync: want SRCDIR and DESTDIR, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(o.tx) == 0 {
				return usagef("rsync: give at least one --tx SPEC")
			}
			if fi, err := os.Stat(args[0]); err != nil {
				return usagef("rsync: SRCDIR: %v", err)
			} else if !fi.IsDir() {
				return usagef("rsync: SRCDIR %s is not a directory", args[0])
			}
			if err := checkDestArg(args[1]); err != nil {
				return err
			}
			if _, err := rsync.NewFilter(o.exclude); err != nil {
				return usagef("--exclude: %v", err)
			}
			gws, err := gatewaysOf("", o.tx)
			if err != nil {
				return err
			}
			return runRsync(cmd.Context(), gws, o, args[0], args[1], stdout, cmd.ErrOrStderr())
		},
	}
	cmd.SetFlagErrorFunc(wrapFlagError)
	cmd.Flags().StringArrayVar(&o.tx, "tx", nil, "a gateway `SPEC`, repeatable")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "one JSON object a line per gateway")
	cmd.Flags().StringArrayVar(&o.exclude, "exclude", nil, "leave out (and never delete) entries matching `PATTERN` (gitignore syntax), repeatable")
	cmd.Flags().BoolVar(&o.noCompress, "no-compress", false, "do not compress file data")
	cmd.Flags().BoolVar(&o.delete, "delete", false, "delete every entry of DESTDIR that SRCDIR lacks, not only those an earlier godist sync wrote")
	return cmd
}

// checkDestArg refuses, before any gateway starts, a DESTDIR that is bad on every
// gateway: empty, /, or relative and climbing out of the working directory. Each
// gateway's receiver checks again, with symlinks resolved, and refuses $HOME and the
// cache root as it sees them.
func checkDestArg(dest string) error {
	accepted := "(accepted: a directory below the gateway's working directory, or an absolute path other than /, $HOME, the godist cache root and directories above them)"
	switch clean := filepath.Clean(dest); {
	case dest == "":
		return usagef("rsync: empty DESTDIR %s", accepted)
	case strings.IndexByte(dest, 0) >= 0:
		return usagef("rsync: DESTDIR %q has a NUL byte", dest)
	case clean == "/":
		return usagef("rsync: DESTDIR %q is / %s", dest, accepted)
	case !filepath.IsAbs(dest) && (clean == ".." || strings.HasPrefix(clean, "../")):
		return usagef("rsync: DESTDIR %q climbs out of the gateway's working directory %s", dest, accepted)
	}
	return nil
}

// runRsync starts every gateway and syncs src to dest on all of them at once. It fails
// with status 2 when a gateway refused DESTDIR or SRCDIR holds an entry that cannot be
// synced, with status 3 when a gateway did not come up or its sync failed otherwise. It
// tells errOut, a line per gateway, about entries of DESTDIR that it kept.
func runRsync(ctx context.Context, gws []xspec.Gateway, o rsyncOptions, src, dest string, out, errOut io.Writer) error {
	results := make([]rsyncResult, len(gws))
	group := gateway.NewGroup(gateway.Options{})
	defer group.Terminate(5 * time.Second)
	// Each destination starts its gateway when Sync opens it: the tree walk overlaps the
	// starts, and each gateway's sync begins as soon as that gateway is up.
	dests := make([]rsync.Dest, len(gws))
	for i, g := range gws {
		results[i] = rsyncResult{ID: g.ID, Spec: g.Spec.Raw}
		dests[i] = rsync.Dest{Name: g.ID, Path: dest, Open: func(ctx context.Context) (*channel.Channel, error) {
			gw, err := group.Start(ctx, g.ID, g.Spec)
			if err != nil {
				return nil, err
			}
			return gw.RemoteExec(ctx, rsync.ReceiverFunc)
		}}
	}
	stats, err := rsync.Sync(ctx, src, dests, rsync.Options{Delete: o.delete, Compress: !o.noCompress, Exclude: o.exclude})
	var usage []string // refused destinations, entries that cannot be synced
	if err != nil {
		var de *rsync.DestError
		n := 0
		for _, e := range flattenErr(err) {
			if errors.As(e, &de) {
				results[de.Index].Error = de.Err.Error()
				if isUsageErr(de.Err) {
					usage = append(usage, de.Name+": "+strings.TrimPrefix(de.Err.Error(), "rsync: "))
				}
				n++
			}
		}
		if n == 0 {
			// The source could not be walked.
			if isUsageErr(err) {
				return usagef("rsync: %v", unprefix(err))
			}
			return &runner.RunError{Err: fmt.Errorf("godist rsync: %w", err)}
		}
	}
	for i, st := range stats {
		r := &results[i]
		r.Files, r.FilesSent, r.Deleted, r.Kept, r.Owned, r.BytesSent = st.Files, st.FilesSent, st.Deleted, st.Kept, st.Owned, st.BytesSent
		r.MS = st.Duration.Milliseconds()
		if st.SameAs >= 0 {
			r.SameAs = gws[st.SameAs].ID
		}
	}
	var failed []string
	for _, r := range results {
		if r.Error != "" {
			failed = append(failed, r.ID+": "+r.Error)
		}
		if o.asJSON {
			b, _ := json.Marshal(r)
			fmt.Fprintf(out, "%s\n", b)
			continue
		}
		switch {
		case r.Error != "":
			fmt.Fprintf(out, "%s\t%s\tERROR %s\n", r.ID, r.Spec, r.Error)
		case r.SameAs != "":
			fmt.Fprintf(out, "%s\t%s\tsame directory as %s\n", r.ID, r.Spec, r.SameAs)
		default:
			fmt.Fprintf(out, "%s\t%s\t%d files, %d sent, %d deleted, %d kept, %d bytes in %dms\n",
				r.ID, r.Spec, r.Files, r.FilesSent, r.Deleted, r.Kept, r.BytesSent, r.MS)
		}
	}
	for _, r := range results {
		switch {
		case r.Error != "" || r.SameAs != "" || r.Kept == 0:
		case !r.Owned:
			fmt.Fprintf(errOut, "godist rsync: %s: %s was not synced by godist before: %d extra %s kept (give --delete to remove them)\n",
				r.ID, shown(dest), r.Kept, plural(r.Kept, "entry", "entries"))
		default:
			fmt.Fprintf(errOut, "godist rsync: %s: %s: %d %s that godist did not write kept (give --delete to remove them)\n",
				r.ID, shown(dest), r.Kept, plural(r.Kept, "entry", "entries"))
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(usage) > 0 {
		return usagef("rsync: %s", strings.Join(usage, "; "))
	}
	if len(failed) > 0 {
		return &runner.RunError{Err: fmt.Errorf("godist rsync: %s", strings.Join(failed, "; "))}
	}
	return nil
}

// isUsageErr reports whether a sync failed on bad input: a destination a receiver
// refused, or an entry of the source that cannot be synced.
func isUsageErr(err error) bool {
	var re *rsync.RefusedError
	var ee *rsync.EntryError
	return errors.As(err, &re) || errors.As(err, &ee)
}

// unprefix drops the "rsync: " that wrapping put before an error's own "rsync: ".
func unprefix(err error) string {
	s := err.Error()
	for strings.HasPrefix(s, "rsync: rsync: ") {
		s = strings.TrimPrefix(s, "rsync: ")
	}
	return strings.TrimPrefix(s, "rsync: ")
}

// shown is a path for a message line: quoted if it holds a control character.
func shown(p string) string {
	if strings.ContainsFunc(p, unicode.IsControl) {
		return strconv.Quote(p)
	}
	return p
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// flattenErr lists the errors joined in err.
func flattenErr(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
