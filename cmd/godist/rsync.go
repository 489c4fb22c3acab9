package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

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
}

func newRsyncCommand(stdout io.Writer) *cobra.Command {
	var o rsyncOptions
	cmd := &cobra.Command{
		Use:   "rsync [--json] --tx SPEC... SRCDIR DESTDIR",
		Short: "Make DESTDIR on every gateway a copy of the local SRCDIR",
		Long: `rsync makes DESTDIR on every gateway (relative: to the gateway's working directory) a copy
of the local directory SRCDIR: files, directories, modes and symlinks; entries that SRCDIR
does not have are deleted, except those matching an --exclude pattern (gitignore syntax).
Changed files travel as rolling-checksum deltas; a directory on a host that several
gateways share is synced once.`,
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
			if args[1] == "" {
				return usagef("rsync: empty DESTDIR")
			}
			if _, err := rsync.NewFilter(o.exclude); err != nil {
				return usagef("--exclude: %v", err)
			}
			gws, err := gatewaysOf("", o.tx)
			if err != nil {
				return err
			}
			return runRsync(cmd.Context(), gws, o, args[0], args[1], stdout)
		},
	}
	cmd.SetFlagErrorFunc(wrapFlagError)
	cmd.Flags().StringArrayVar(&o.tx, "tx", nil, "a gateway `SPEC`, repeatable")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "one JSON object a line per gateway")
	cmd.Flags().StringArrayVar(&o.exclude, "exclude", nil, "leave out (and never delete) entries matching `PATTERN` (gitignore syntax), repeatable")
	cmd.Flags().BoolVar(&o.noCompress, "no-compress", false, "do not compress file data")
	return cmd
}

// runRsync starts every gateway and syncs src to dest on all of them at once; it fails
// with status 3 when a gateway did not come up or its sync failed.
func runRsync(ctx context.Context, gws []xspec.Gateway, o rsyncOptions, src, dest string, out io.Writer) error {
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
	stats, err := rsync.Sync(ctx, src, dests, rsync.Options{Delete: true, Compress: !o.noCompress, Exclude: o.exclude})
	if err != nil {
		var de *rsync.DestError
		n := 0
		for _, e := range flattenErr(err) {
			if errors.As(e, &de) {
				results[de.Index].Error = de.Err.Error()
				n++
			}
		}
		if n == 0 {
			return err // the source could not be walked
		}
	}
	for i, st := range stats {
		r := &results[i]
		r.Files, r.FilesSent, r.Deleted, r.BytesSent = st.Files, st.FilesSent, st.Deleted, st.BytesSent
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
			fmt.Fprintf(out, "%s\t%s\t%d files, %d sent, %d deleted, %d bytes in %dms\n",
				r.ID, r.Spec, r.Files, r.FilesSent, r.Deleted, r.BytesSent, r.MS)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(failed) > 0 {
		return &runner.RunError{Err: fmt.Errorf("godist rsync: %s", strings.Join(failed, "; "))}
	}
	return nil
}

// flattenErr lists the errors joined in err.
func flattenErr(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
