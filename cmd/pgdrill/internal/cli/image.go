package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func (a *app) imageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build the Postgres image the container provider runs",
		Long: `The container provider runs Postgres from an image. Where no registry can be reached, pgdrill
builds a faithful one from Debian's own packages: a bookworm root filesystem with postgresql-15,
its client tools and pgBackRest (mmdebstrap), imported into the Docker engine with the official
postgres image's entrypoint contract (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB,
/docker-entrypoint-initdb.d), so it runs as the official image does. A user with a registry can
name any image instead.`,
		Args: noArgs,
	}
	var tag string
	var ifMissing bool
	build := &cobra.Command{
		Use:   "build",
		Short: "Build pgdrill's Postgres image from Debian's packages and tag it",
		Long: `Build the image (about a minute, a few hundred MB from the Debian mirror) and tag it, replacing an
image of the same tag. Needs root (or user namespaces for mmdebstrap), mmdebstrap
(apt-get install mmdebstrap) and a Docker engine (DOCKER_HOST and the CLI's contexts are followed,
so a remote engine works). ` + "`pgdrill doctor`" + ` says when the image is missing or out of date.

Exit codes: 0 built, 2 a tool or the engine is missing, 3 the build broke.`,
		Example: "  pgdrill image build\n  pgdrill image build --if-missing   # what make test runs\n  pgdrill image build --tag registry.example.com/pgdrill/postgres:15 -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.host.BuildImage(cmd.Context(), tag, ifMissing)
			if err != nil {
				return err
			}
			return a.print(st, func(w io.Writer) { fmt.Fprintf(w, "%s: built from recipe %s\n", st.Tag, st.Recipe) })
		},
	}
	build.Flags().StringVar(&tag, "tag", "", "tag of the image (default pgdrill/postgres:15)")
	build.Flags().BoolVar(&ifMissing, "if-missing", false, "keep an image of the tag already built from this pgdrill's recipe")
	cmd.AddCommand(build)
	return cmd
}
