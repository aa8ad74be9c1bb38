// Command pgdrill rehearses partial restores of PostgreSQL tenants on throwaway sharded clusters
// and scores them against recovery objectives. See `pgdrill --help`.
package main

import (
	"os"

	"github.com/pgdrill/pgdrill/cmd/pgdrill/internal/cli"
)

func main() {
	os.Exit(int(cli.Main(cli.OSState())))
}
