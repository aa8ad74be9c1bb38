package image_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/image"
)

// testLabel marks the containers these specs start, so that each spec removes its own and nothing
// else.
const testLabel = "dev.pgdrill.image-test"

var _ = Describe("the Postgres image built from Debian's packages", Label(drilltest.Docker), func() {
	var tag string
	BeforeEach(func(ctx context.Context) {
		tag = image.DefaultTag
		drilltest.NeedImage(ctx, tag, "pgdrill image build", "the container provider's image was not checked against the official image's contract")
	})

	// run starts a container of the image with args (docker run flags), labelled for this spec and
	// removed after it, and returns its id. No port is published: the specs reach the container
	// at its bridge address, so no host port can be taken by another suite's server meanwhile,
	// and a server that answers there listens on more than loopback.
	run := func(ctx context.Context, args ...string) string {
		GinkgoHelper()
		id := fmt.Sprintf("%d-%d", GinkgoParallelProcess(), time.Now().UnixNano())
		full := append([]string{"run", "-d", "--label", testLabel + "=" + id}, args...)
		out := docker(ctx, append(full, tag)...)
		container := strings.TrimSpace(out)
		DeferCleanup(func(ctx context.Context) {
			_, _ = exec.CommandContext(ctx, "docker", "rm", "-f", "-v", container).CombinedOutput()
		})
		return container
	}

	It("initializes as the official image does: user, password, database and init scripts; then serves on every address", func(ctx context.Context) {
		initDir := GinkgoT().TempDir()
		Expect(os.Chmod(initDir, 0o755)).To(Succeed(), "the scripts run as postgres, as in the official image")
		Expect(os.WriteFile(filepath.Join(initDir, "10-seed.sql"), []byte("CREATE TABLE seeded (x int); INSERT INTO seeded VALUES (42);"), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(initDir, "20-note.sh"), []byte(`echo "init script ran as $(id -un)"`), 0o644)).To(Succeed())
		c := run(ctx, "-e", "POSTGRES_USER=app", "-e", "POSTGRES_PASSWORD=s3cret", "-e", "POSTGRES_DB=drill",
			"-v", initDir+":/docker-entrypoint-initdb.d:ro")
		Eventually(func(ctx context.Context) int {
			return strings.Count(logs(ctx, c), "database system is ready to accept connections")
		}).
			WithContext(ctx).WithTimeout(90*time.Second).Should(Equal(2), "the temporary server, then the real one")
		Expect(logs(ctx, c)).To(ContainSubstring("init script ran as postgres"))

		conn := connect(ctx, c, "app", "s3cret", "drill")
		var x int
		var user, db, version string
		Expect(conn.QueryRow(ctx, "SELECT x, current_user, current_database(), current_setting('server_version') FROM seeded").
			Scan(&x, &user, &db, &version)).To(Succeed())
		Expect([]any{x, user, db}).To(Equal([]any{42, "app", "drill"}))
		Expect(version).To(HavePrefix("15."))
		_, err := conn.Exec(ctx, "CREATE EXTENSION pg_walinspect")
		Expect(err).NotTo(HaveOccurred(), "the contrib modules a blind drill reads the WAL with are there")
		_, err = pgx.Connect(ctx, dsn(ctx, c, "app", "wrong", "drill"))
		Expect(err).To(MatchError(ContainSubstring("password authentication failed")), "a password is asked for over TCP")
		Expect(conn.Close(ctx)).To(Succeed())

		By("stopping with SIGINT, a fast shutdown, and starting again on its data")
		start := time.Now()
		docker(ctx, "stop", "-t", "30", c)
		Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second), "no smart shutdown waiting for clients")
		Expect(logs(ctx, c)).To(ContainSubstring("database system is shut down"))
		docker(ctx, "start", c)
		Eventually(func(ctx context.Context) int {
			return strings.Count(logs(ctx, c), "database system is ready to accept connections")
		}).
			WithContext(ctx).WithTimeout(60*time.Second).Should(Equal(3), "once more: no second initialization")
		conn = connect(ctx, c, "app", "s3cret", "drill")
		Expect(conn.QueryRow(ctx, "SELECT x FROM seeded").Scan(&x)).To(Succeed())
		Expect(x).To(Equal(42))
		Expect(conn.Close(ctx)).To(Succeed())
	})

	It("refuses to initialize without a password, saying how to give one", func(ctx context.Context) {
		c := run(ctx)
		Eventually(func(ctx context.Context) string {
			return docker(ctx, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", c)
		}).
			WithContext(ctx).WithTimeout(30 * time.Second).Should(Equal("exited 1\n"))
		Expect(logs(ctx, c)).To(ContainSubstring("POSTGRES_PASSWORD is not set"))
	})

	It("is labelled with the recipe it was built from", func(ctx context.Context) {
		st, err := image.Inspect(ctx, image.DefaultSpec())
		Expect(err).NotTo(HaveOccurred())
		Expect(st).To(Equal(image.Status{Tag: image.DefaultTag, Present: true, Recipe: image.DefaultSpec().Recipe(), Current: true}))
		other := image.DefaultSpec()
		other.Major = "16"
		Expect(other.Recipe()).NotTo(Equal(st.Recipe), "another recipe is another image")
	})
})

// docker runs the docker CLI and returns its output, failing the spec on an error.
func docker(ctx context.Context, args ...string) string {
	GinkgoHelper()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "docker %s: %s", strings.Join(args, " "), out)
	return string(out)
}

// logs returns everything container c has logged.
func logs(ctx context.Context, c string) string {
	out, _ := exec.CommandContext(ctx, "docker", "logs", c).CombinedOutput()
	return string(out)
}

// dsn is the DSN of database db on container c's bridge address, as user with password.
func dsn(ctx context.Context, c, user, password, db string) string {
	GinkgoHelper()
	addr := strings.TrimSpace(docker(ctx, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", c))
	Expect(addr).NotTo(BeEmpty(), "container %s has an address on a network", c)
	return fmt.Sprintf("postgres://%s:%s@%s:5432/%s?sslmode=disable", user, password, strings.Fields(addr)[0], db)
}

// connect opens a session on container c.
func connect(ctx context.Context, c, user, password, db string) *pgx.Conn {
	GinkgoHelper()
	conn, err := pgx.Connect(ctx, dsn(ctx, c, user, password, db))
	Expect(err).NotTo(HaveOccurred())
	return conn
}
