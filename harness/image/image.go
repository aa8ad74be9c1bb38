// Package image builds the Postgres image the container provider runs, on machines that reach no
// image registry: a Debian root filesystem with Debian's own PostgreSQL packages, made by
// mmdebstrap, built into an image FROM scratch with the official postgres image's entrypoint
// contract (docker-entrypoint.sh), so that testcontainers-go's postgres module and anyone's
// compose file drive it as they drive the official image. A user with a registry names any image
// instead; this one is for everyone else.
//
// It talks to the engine through the docker CLI, which follows DOCKER_HOST and the CLI's
// contexts as the engine's users expect; the root filesystem travels to the engine as the build
// context, so a remote engine works too.
package image

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgdrill/pgdrill/harness/logtail"
)

// DefaultTag is the tag `pgdrill image build` gives the image, and the image the container
// provider runs unless told another.
const DefaultTag = "pgdrill/postgres:15"

// RecipeLabel is the image label holding the hash of the recipe it was built from (Spec.Recipe):
// `pgdrill doctor` tells an image built by an older pgdrill from a current one by it.
const RecipeLabel = "dev.pgdrill.recipe"

// entrypoint is the image's /usr/local/bin/docker-entrypoint.sh.
//
//go:embed docker-entrypoint.sh
var entrypoint []byte

// Spec is what an image is built from.
type Spec struct {
	// Tag names the image in the engine.
	Tag string
	// Suite and Mirror are the Debian release and the archive its packages come from.
	Suite  string
	Mirror string
	// Major is the PostgreSQL major version: Debian's postgresql-MAJOR packages.
	Major string
}

// DefaultSpec is pgdrill's image: PostgreSQL 15 from Debian bookworm, the server the local
// provider runs on the same machines.
func DefaultSpec() Spec {
	return Spec{Tag: DefaultTag, Suite: "bookworm", Mirror: "http://deb.debian.org/debian", Major: "15"}
}

// packages are the Debian packages the image holds beyond minbase: the server, its client tools
// (psql, pg_basebackup, pg_waldump) and pgBackRest, so a container can be a shard protected by
// either backup engine.
func (s Spec) packages() []string {
	return []string{"postgresql-" + s.Major, "postgresql-client-" + s.Major, "pgbackrest"}
}

// binDir is where Debian installs the server's binaries.
func (s Spec) binDir() string { return "/usr/lib/postgresql/" + s.Major + "/bin" }

// config is the image's configuration, as Dockerfile instructions after its root filesystem: the
// official image's entrypoint, command, data directory, port and stop signal (SIGINT: a fast
// shutdown, not the smart one SIGTERM asks for, which waits for every client). `docker import
// --change` takes neither STOPSIGNAL nor LABEL, so the image is built FROM scratch.
func (s Spec) config(recipe string) []string {
	return []string{
		`ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]`,
		`CMD ["postgres"]`,
		"ENV PATH=" + s.binDir() + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"ENV PGDATA=/var/lib/postgresql/data",
		"ENV LANG=C.UTF-8",
		"EXPOSE 5432",
		"STOPSIGNAL SIGINT",
		"LABEL " + RecipeLabel + "=" + recipe,
	}
}

// Recipe is a hash of everything the image is built from: the release, the packages, the
// configuration and the entrypoint.
func (s Spec) Recipe() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", s.Suite, strings.Join(s.packages(), ","))
	for _, c := range s.config("") {
		fmt.Fprintln(h, c)
	}
	h.Write(entrypoint)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ErrNoEngine means no Docker engine answers: the image can be neither built nor run.
var ErrNoEngine = errors.New("no Docker engine answers")

// ErrNoMmdebstrap means mmdebstrap, which makes the root filesystem, is not installed.
var ErrNoMmdebstrap = errors.New("mmdebstrap is not installed; install it with `apt-get install mmdebstrap`")

// Status is what the engine holds under a tag.
type Status struct {
	Tag string `json:"tag"`
	// Present says the engine has an image of that tag; Recipe is its RecipeLabel, empty for an
	// image pgdrill did not build.
	Present bool   `json:"present"`
	Recipe  string `json:"recipe,omitempty"`
	// Current says it was built from this pgdrill's recipe.
	Current bool `json:"current"`
}

// Inspect asks the engine about spec's tag.
func Inspect(ctx context.Context, spec Spec) (Status, error) {
	st := Status{Tag: spec.Tag}
	out, err := docker(ctx, nil, "image", "inspect", "--format", `{{index .Config.Labels "`+RecipeLabel+`"}}`, spec.Tag)
	if err != nil {
		if strings.Contains(err.Error(), "No such image") {
			return st, nil
		}
		return st, err
	}
	st.Present = true
	st.Recipe = strings.TrimSpace(out)
	st.Current = st.Recipe == spec.Recipe()
	return st, nil
}

// Build makes the image spec describes and tags it, replacing an image of the same tag: a root
// filesystem with Debian's packages and pgdrill's entrypoint (mmdebstrap, as root or in a user
// namespace, in a directory of its own under workDir, removed afterwards), built into an image
// FROM scratch. It takes about a minute and a few hundred MB of download.
func Build(ctx context.Context, spec Spec, workDir string, log *slog.Logger) (Status, error) {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return Status{}, ErrNoMmdebstrap
	}
	if _, err := docker(ctx, nil, "version", "--format", "{{.Server.Version}}"); err != nil {
		return Status{}, err
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil { // a fresh machine has no work root yet
		return Status{}, fmt.Errorf("build image %s: %w", spec.Tag, err)
	}
	dir, err := os.MkdirTemp(workDir, "pgdrill-image-")
	if err != nil {
		return Status{}, fmt.Errorf("build image %s: %w", spec.Tag, err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	script := filepath.Join(dir, "docker-entrypoint.sh")
	if err := os.WriteFile(script, entrypoint, 0o755); err != nil {
		return Status{}, fmt.Errorf("build image %s: %w", spec.Tag, err)
	}
	rootfs := filepath.Join(dir, "rootfs.tar")
	start := time.Now()
	log.Info("building the root filesystem", "suite", spec.Suite, "packages", spec.packages())
	// The hooks run on the finished tree ($1): the entrypoint goes in, the cluster Debian's
	// package creates goes away (the entrypoint makes its own in $PGDATA), and apt's caches go.
	hooks := []string{
		`install -m 0755 ` + script + ` "$1/usr/local/bin/docker-entrypoint.sh"`,
		`rm -rf "$1/var/lib/postgresql/` + spec.Major + `" "$1/etc/postgresql/` + spec.Major + `"`,
		`mkdir -p "$1/docker-entrypoint-initdb.d" "$1/var/lib/postgresql/data"`,
		`chroot "$1" chown postgres:postgres /var/lib/postgresql /var/lib/postgresql/data`,
		`rm -rf "$1/var/cache/apt/archives/"*.deb "$1/var/lib/apt/lists/"*`,
	}
	args := []string{"--variant=minbase", "--mode=auto", "--format=tar", "--include=" + strings.Join(spec.packages(), ",")}
	for _, h := range hooks {
		args = append(args, "--customize-hook="+h)
	}
	args = append(args, spec.Suite, rootfs, spec.Mirror)
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return Status{}, fmt.Errorf("build image %s: mmdebstrap: %w: %s", spec.Tag, err, logtail.Last(stderr.String(), 8))
	}
	log.Info("root filesystem built", "took", time.Since(start).Round(time.Second))
	dockerfile := "FROM scratch\nADD rootfs.tar /\n" + strings.Join(spec.config(spec.Recipe()), "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return Status{}, fmt.Errorf("build image %s: %w", spec.Tag, err)
	}
	if err := os.Remove(script); err != nil { // the build context is the root filesystem alone
		return Status{}, fmt.Errorf("build image %s: %w", spec.Tag, err)
	}
	if _, err := docker(ctx, nil, "build", "--quiet", "--tag", spec.Tag, dir); err != nil {
		return Status{}, fmt.Errorf("build image %s: %w", spec.Tag, err)
	}
	log.Info("image built", "tag", spec.Tag, "took", time.Since(start).Round(time.Second))
	return Inspect(ctx, spec)
}

// docker runs the docker CLI with stdin and returns its output; an engine that does not answer
// is ErrNoEngine.
func docker(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	if _, err := exec.LookPath("docker"); err != nil {
		return "", fmt.Errorf("%w: the docker CLI is not installed", ErrNoEngine)
	}
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdin = stdin
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "Cannot connect to the Docker daemon") || strings.Contains(msg, "error during connect") {
			return "", fmt.Errorf("%w: %s", ErrNoEngine, msg)
		}
		return "", fmt.Errorf("docker %s: %w: %s", args[0], err, logtail.Last(msg, 5))
	}
	return string(out), nil
}
