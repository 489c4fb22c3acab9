package main

import (
	"github.com/spf13/cobra"

	"github.com/godist/godist/gateway"
	"github.com/godist/godist/worker"
)

func newWorkerCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "worker",
		Short:  "Serve a godist master over stdin/stdout (what gateways start; not for people)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			reg := gateway.NewRegistry()
			worker.Register(reg)
			err := gateway.Serve(cmd.Context(), gateway.Stdio(), reg)
			if err != nil && gateway.IsEndOfStream(err) {
				return nil
			}
			return err
		},
	}
}
