package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/godist/godist/gateway"
	"github.com/godist/godist/internal/child"
	"github.com/godist/godist/proto"
	"github.com/godist/godist/rsync"
	"github.com/godist/godist/worker"
)

func newWorkerCommand() *cobra.Command {
	var nice int
	cmd := &cobra.Command{
		Use:    "worker",
		Short:  "Serve a godist master over stdin/stdout (what gateways start; not for people)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// It would start test processes it could not kill with all they start.
			if err := child.Supported(); err != nil {
				return fmt.Errorf("worker: %w", err)
			}
			if cmd.Flags().Changed("nice") {
				// Test processes inherit it.
				if err := child.Renice(os.Getpid(), nice); err != nil {
					return fmt.Errorf("worker: nice %d: %w", nice, err)
				}
			}
			// The worker side: running test processes, the sync receiver, and a hop's side
			// of via= (which opens the next transport from this host).
			reg := worker.NewRegistry()
			worker.Register(reg)
			reg.Register(rsync.ReceiverFunc, rsync.Receiver)
			reg.Register(proto.SpawnFunc, gateway.ServeSpawn)
			err := worker.Serve(cmd.Context(), worker.Stdio(), reg)
			if err != nil && worker.IsEndOfStream(err) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().IntVar(&nice, "nice", 0, "run at this niceness")
	return cmd
}
