package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/godist/godist/resultcache"
)

// defaultCacheDir is the result cache's directory when --cache-dir is not given:
// $GODIST_CACHE_DIR (off: none), else godist/results in the user cache ("" when there is
// none: results are neither reused nor recorded).
func defaultCacheDir() string {
	if d := os.Getenv("GODIST_CACHE_DIR"); d == "off" {
		return ""
	} else if d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "godist", "results")
}

// parseSize reads a size in bytes, with an optional K, M, G or T suffix (powers of 1024).
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "B")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errors.New("expected a size in bytes, such as 500M, 2G or 0")
	}
	return n * mult, nil
}

func newCacheCommand(stdout io.Writer) *cobra.Command {
	var dir, max string
	cmd := &cobra.Command{
		Use:   "cache {stat|trim|clean}",
		Short: "Show, trim or empty the result cache",
		Long: `godist cache works on the result cache (--cache-dir, default $GODIST_CACHE_DIR, else
godist/results in the user cache):
  stat   how many results it holds and their size
  trim   remove the least recently used results until it holds at most --max (default 1G)
  clean  remove every result
It removes only the files godist wrote there (DIR/XX/KEY.res); the directory stays.`,
		Args:          cobra.ExactArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				dir = defaultCacheDir()
			}
			if dir == "" {
				return usagef("cache: no user cache directory here; give --cache-dir DIR")
			}
			op := args[0]
			if op != "stat" && op != "trim" && op != "clean" {
				return usagef("cache %s: unknown operation (accepted: stat, trim, clean)", printable(op))
			}
			c, err := resultcache.Open(dir)
			if err != nil {
				return usagef("%v", err)
			}
			switch op {
			case "stat":
				s, err := c.Stat()
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s: %d result(s), %s\n", c.Dir(), s.Entries, humanSize(s.Bytes))
			case "trim":
				n := int64(resultcache.DefaultMax)
				if max != "" {
					if n, err = parseSize(max); err != nil {
						return usagef("--max %s: %v", printable(max), err)
					}
				}
				s, err := c.Trim(n)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s: removed %d result(s), %s\n", c.Dir(), s.Entries, humanSize(s.Bytes))
			case "clean":
				s, err := c.Clear()
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s: removed %d result(s), %s\n", c.Dir(), s.Entries, humanSize(s.Bytes))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "cache-dir", "", "the result cache `DIR`")
	cmd.Flags().StringVar(&max, "max", "", "trim to `SIZE` (e.g. 500M, 2G)")
	cmd.SetFlagErrorFunc(wrapFlagError)
	return cmd
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
