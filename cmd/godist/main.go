package main

import (
	_ "github.com/charmbracelet/lipgloss"
	_ "github.com/fxamacker/cbor/v2"
	_ "github.com/spf13/cobra"
	_ "golang.org/x/crypto/ssh"
	_ "gotest.tools/gotestsum/testjson"
)

func main() {}
