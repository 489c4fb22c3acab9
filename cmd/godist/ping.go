package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/godist/godist/gateway"
	"github.com/godist/godist/runner"
	"github.com/godist/godist/xspec"
)

// pingResult is one gateway's line of `godist ping --json`.
type pingResult struct {
	ID     string `json:"id"`
	Spec   string `json:"spec"`
	GOOS   string `json:"goos"`   // what the worker runs as
	GOARCH string `json:"goarch"` // (its runtime.GOOS/GOARCH)
	// AskedGOOS and AskedGOARCH are the spec's goos= and goarch=, the platform the tests
	// are built for, when it is not what the worker runs as (ssh=HOST//goarch=386 on an
	// amd64 host: a 386 test binary, an amd64 worker).
	AskedGOOS   string `json:"asked_goos,omitempty"`
	AskedGOARCH string `json:"asked_goarch,omitempty"`
	Hostname    string `json:"hostname"`
	PID         int    `json:"pid"`
	Cwd         string `json:"cwd"`
	NCPU        int    `json:"ncpu"`
	Version     string `json:"version"`
	StartupMS   int64  `json:"startup_ms"`
	Shipped     int64  `json:"shipped_bytes"`
	Error       string `json:"error,omitempty"`
}

func newPingCommand(stdout io.Writer) *cobra.Command {
	var tx []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ping --tx SPEC...",
		Short: "Start every gateway, print what each reports, stop them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(tx) == 0 {
				return usagef("ping: give at least one --tx SPEC")
			}
			gws, err := gatewaysOf("", tx)
			if err != nil {
				return err
			}
			return runPing(cmd.Context(), gws, asJSON, stdout)
		},
	}
	cmd.SetFlagErrorFunc(wrapFlagError)
	cmd.Flags().StringArrayVar(&tx, "tx", nil, "a gateway `SPEC`, repeatable")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object a line per gateway")
	return cmd
}

// runPing starts all gateways concurrently and reports each; it fails with status 3 when
// any gateway did not come up.
func runPing(ctx context.Context, gws []xspec.Gateway, asJSON bool, out io.Writer) error {
	results := make([]pingResult, len(gws))
	group := gateway.NewGroup(gateway.Options{})
	defer group.Terminate(5 * time.Second)
	var wg sync.WaitGroup
	for i, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			gw, err := group.Start(ctx, g.ID, g.Spec)
			res := pingResult{ID: g.ID, Spec: g.Spec.Raw, StartupMS: time.Since(start).Milliseconds()}
			if err != nil {
				res.Error = err.Error()
			} else {
				in := gw.Info
				res.GOOS, res.GOARCH, res.Hostname, res.PID, res.Cwd, res.NCPU, res.Version, res.Shipped =
					in.GOOS, in.GOARCH, in.Hostname, in.PID, in.Cwd, in.NCPU, in.Version, gw.Shipped
				if g.Spec.GOOS != "" || g.Spec.GOARCH != "" {
					if goos, goarch := g.Spec.Platform(); goos != in.GOOS || goarch != in.GOARCH {
						res.AskedGOOS, res.AskedGOARCH = goos, goarch
					}
				}
			}
			results[i] = res
		}()
	}
	wg.Wait()
	failed := 0
	for _, r := range results {
		if r.Error != "" {
			failed++
		}
		if asJSON {
			b, _ := json.Marshal(r)
			fmt.Fprintf(out, "%s\n", b)
			continue
		}
		if r.Error != "" {
			fmt.Fprintf(out, "%s\t%s\tERROR %s\n", r.ID, r.Spec, r.Error)
			continue
		}
		platform := r.GOOS + "/" + r.GOARCH
		if r.AskedGOOS != "" {
			platform += " (tests built for " + r.AskedGOOS + "/" + r.AskedGOARCH + ")"
		}
		fmt.Fprintf(out, "%s\t%s\t%s host=%s pid=%d cwd=%s ncpu=%d version=%s startup=%dms\n",
			r.ID, r.Spec, platform, r.Hostname, r.PID, r.Cwd, r.NCPU, r.Version, r.StartupMS)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if failed > 0 {
		return &runner.RunError{Err: fmt.Errorf("godist ping: %d of %d gateways did not come up", failed, len(results))}
	}
	return nil
}
