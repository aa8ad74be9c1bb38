// Package container is the container provider: every server of a cluster (catalog, shards,
// sidecars, standbys) is a container of one Postgres image (pgdrill's own, harness/image, or any
// image keeping the official image's contract) on the run's private Docker network, started
// through testcontainers-go's postgres module. It is the only package that imports
// testcontainers-go.
//
// Every file of a run lives in one volume of the run, mounted at /pgdrill in each of its
// containers: the servers' data directories, their WAL archives and their base backups. A tools
// container of the same image keeps it mounted for the run's life and is where base backups are
// taken (pg_basebackup over the network, as from a backup host), WAL is read and sidecars are
// laid out. pgdrill itself only talks to the engine's API and to the servers' published ports,
// so the engine may be another machine's (DOCKER_HOST, or testcontainers-go's own settings).
//
// Nothing is left behind without Ryuk, which cannot be pulled here: every container, network and
// volume carries the run's label (LabelRun), and Destroy, `pgdrill down` and the next start
// sweep by it (Sweep), touching nothing without it.
package container

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/image"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// ProviderName is how the container provider is named in records, flags and reports.
const ProviderName = "container"

// Labels every object of a run carries: the run, and for a container the server it is.
const (
	LabelRun    = "dev.pgdrill.run"
	LabelServer = "dev.pgdrill.server"
	// LabelHandle marks what a process attached to another's run (Attach) made in it.
	LabelHandle = "dev.pgdrill.handle"
)

// ErrNotYet is what the provider answers for what it cannot do yet (sidecar disks of their own):
// said plainly, so that a drill refuses rather than pretends.
var ErrNotYet = errors.New("not supported by the container provider yet")

// startTimeout bounds a container's start: the image is local, so a start that takes longer is
// broken, not slow (a missing image would otherwise be pulled, with retries, for minutes).
const startTimeout = 2 * time.Minute

// Where a run's volume is mounted in its containers, and its layout.
const (
	mountPoint = "/pgdrill"
	dataRoot   = mountPoint + "/data"
	walRoot    = mountPoint + "/wal"
	backupRoot = mountPoint + "/backups"
)

// Provider starts clusters of containers.
type Provider struct {
	image string
	log   *slog.Logger
	store *runstate.Store
	// host is where the engine publishes the servers' ports and pgdrill connects to them: the
	// engine's own address when it is another machine's, else loopback.
	host netip.Addr
}

var _ cluster.Provider = (*Provider)(nil)

// Option configures a Provider.
type Option func(*Provider)

// WithImage runs image instead of pgdrill's own (image.DefaultTag): any image keeping the
// official postgres image's contract.
func WithImage(ref string) Option { return func(p *Provider) { p.image = ref } }

// WithLogger logs to l.
func WithLogger(l *slog.Logger) Option { return func(p *Provider) { p.log = l } }

// WithStore records every run in store before it starts anything, so that `pgdrill ls` and
// `pgdrill down` see it and the next pgdrill reaps it when its own was killed (ReapOrphans).
// Default: no record; Destroy still removes everything.
func WithStore(store *runstate.Store) Option { return func(p *Provider) { p.store = store } }

// New returns a provider. testcontainers-go's reaper (Ryuk) is turned off before the library
// reads its configuration: it cannot be pulled, and Sweep does its work.
//
// The engine is the one DOCKER_HOST names (else testcontainers-go's settings, else the local
// socket). The servers' ports are published on the engine host's address, that of a tcp://
// DOCKER_HOST and loopback for any other, and that is where the provider connects: were pgdrill
// itself in a container (a CI job's), testcontainers-go would otherwise dial the container's
// default gateway instead.
func New(opts ...Option) *Provider {
	_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	host := engineHost(os.Getenv("DOCKER_HOST"))
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		_ = os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", host.String())
	}
	p := &Provider{image: image.DefaultTag, log: slog.New(slog.NewTextHandler(io.Discard, nil)), host: host}
	for _, o := range opts {
		o(p)
	}
	tclog.SetDefault(debugLog{p.log}) // the library's chatter goes to pgdrill's log, at debug level
	return p
}

// engineHost is the address of the engine dockerHost (a DOCKER_HOST) names: the IP address of a
// tcp:// engine, resolved if named, and loopback for a local one (a unix socket, or none).
func engineHost(dockerHost string) netip.Addr {
	u, err := url.Parse(dockerHost)
	if err != nil || u.Scheme != "tcp" || u.Hostname() == "" {
		return netip.MustParseAddr("127.0.0.1")
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
		return ip
	}
	if ips, err := net.LookupIP(u.Hostname()); err == nil && len(ips) > 0 {
		if ip, ok := netip.AddrFromSlice(ips[0]); ok {
			return ip.Unmap()
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}

// debugLog passes testcontainers-go's log lines to a structured log at debug level.
type debugLog struct{ l *slog.Logger }

// Printf implements testcontainers-go's log.Logger.
func (d debugLog) Printf(format string, v ...any) {
	d.l.Debug(fmt.Sprintf(format, v...), "from", "testcontainers")
}

// Name implements cluster.Provider.
func (p *Provider) Name() string { return ProviderName }

// Image is the image the provider runs.
func (p *Provider) Image() string { return p.image }

// Create records the run, makes its network, its volume and its tools container, then starts
// the catalog and spec.Shards shards in parallel and marks each one's database. On error the
// partial cluster is returned for the caller to Destroy.
func (p *Provider) Create(ctx context.Context, spec cluster.Spec) (cluster.Cluster, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("create cluster: %w", err)
	}
	if spec.SidecarDisks {
		return nil, fmt.Errorf("create cluster: sidecar disks of their own are %w", ErrNotYet)
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("create cluster: make run id: %w", err)
	}
	self, err := runstate.Self()
	if err != nil {
		return nil, fmt.Errorf("create cluster: %w", err)
	}
	c := &containers{p: p, runID: "r" + hex.EncodeToString(b), spec: spec, owner: self, created: time.Now().UTC(), image: p.image}
	// Recorded before anything exists, so that whatever happens next can be reaped.
	if err := c.saveRecord(); err != nil {
		return nil, err
	}
	if err := c.setUp(ctx); err != nil {
		return c, fmt.Errorf("create cluster %s: %w", c.runID, err)
	}
	c.catalog = c.newServer("catalog", cluster.RoleCatalog, -1, true)
	for i := range spec.Shards {
		c.shards = append(c.shards, c.newServer("shard-"+strconv.Itoa(i), cluster.RoleShard, i, true))
	}
	all := append([]*server{c.catalog}, c.shards...)
	if err := c.tool(ctx, asPostgres, nil, `for s in "$@"; do mkdir -p `+walRoot+`/"$s"; done`, names(all)...); err != nil {
		return c, fmt.Errorf("create cluster %s: make WAL archives: %w", c.runID, err)
	}
	if spec.Engine == cluster.EnginePgBackRest {
		if err := c.writePgBackRestConf(ctx, c.shards); err != nil {
			return c, fmt.Errorf("create cluster %s: %w", c.runID, err)
		}
	}
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, s := range all {
		wg.Go(func() { errs[i] = s.boot(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("create cluster %s: %w", c.runID, err)
	}
	p.log.Info("cluster up", "run_id", c.runID, "shards", spec.Shards, "image", p.image)
	return c, c.saveRecord()
}

// names returns the servers' names.
func names(servers []*server) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s.name
	}
	return out
}

// containers is one cluster.
type containers struct {
	p       *Provider
	runID   string
	spec    cluster.Spec
	owner   runstate.Process
	created time.Time

	image   string // every container's
	cli     *testcontainers.DockerClient
	network string // its name
	volume  string
	tools   *testcontainers.DockerContainer
	toolsID string
	catalog *server
	shards  []*server

	// handle is the id of an attached handle (Attach), which is also its record's; "" for the
	// run's owner.
	handle string

	mu       sync.Mutex
	seq      int
	detached bool
	info     json.RawMessage
	sidecars []*server
	standbys []*server
}

var _ cluster.Cluster = (*containers)(nil)

// setUp connects to the engine and makes the run's network, its volume and its tools container,
// which lays the volume out for the servers.
func (c *containers) setUp(ctx context.Context) error {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("connect to the container engine: %w", err)
	}
	c.cli = cli
	if _, err := cli.ImageInspect(ctx, c.image); err != nil {
		return fmt.Errorf("image %s is not on the engine (build it with `pgdrill image build`, or name another with --image): %w", c.image, err)
	}
	nw, err := network.New(ctx, network.WithLabels(c.labels("")))
	if err != nil {
		return fmt.Errorf("make network: %w", err)
	}
	c.network = nw.Name
	c.volume = "pgdrill-" + c.runID
	// In memory, as the local provider's work root is when there is room: a throwaway cluster's
	// thousands of small files cost a disk dearly, and nothing of it must outlive the run. The
	// tools container keeps it mounted for the run's life.
	if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: c.volume, Labels: c.labels(""),
		DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}}); err != nil {
		return fmt.Errorf("make volume: %w", err)
	}
	tctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tools, err := testcontainers.Run(tctx, c.image,
		testcontainers.WithEntrypoint("sleep", "infinity"),
		testcontainers.WithLabels(c.labels("tools")),
		testcontainers.WithMounts(testcontainers.VolumeMount(c.volume, mountPoint)),
		network.WithNetworkName([]string{"tools"}, nw.Name))
	if tools != nil {
		c.tools, c.toolsID = tools, tools.GetContainerID()
	}
	if err != nil {
		return fmt.Errorf("start tools container: %w", err)
	}
	layout := `mkdir -p ` + dataRoot + ` ` + walRoot + ` ` + backupRoot + ` && chown postgres:postgres ` + mountPoint + ` ` + dataRoot + ` ` + walRoot + ` ` + backupRoot
	if err := c.tool(ctx, asRoot, nil, layout); err != nil {
		return fmt.Errorf("lay out volume %s: %w", c.volume, err)
	}
	return nil
}

// labels are the labels of the run's objects; of server name's container when name is set. An
// attached handle's objects carry its own id too (LabelHandle), so that it removes its own.
func (c *containers) labels(name string) map[string]string {
	l := map[string]string{LabelRun: c.runID}
	if name != "" {
		l[LabelServer] = name
	}
	if c.handle != "" {
		l[LabelHandle] = c.handle
	}
	return l
}

func (c *containers) RunID() string           { return c.runID }
func (c *containers) Provider() string        { return ProviderName }
func (c *containers) Catalog() cluster.Server { return c.catalog }

func (c *containers) Shards() []cluster.Server {
	out := make([]cluster.Server, len(c.shards))
	for i, s := range c.shards {
		out[i] = s
	}
	return out
}

// servers returns every server of the cluster, sidecars and standbys included.
func (c *containers) servers() []*server {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []*server{}
	if c.catalog != nil {
		out = append(out, c.catalog)
	}
	out = append(out, c.shards...)
	out = append(out, c.sidecars...)
	return append(out, c.standbys...)
}

// find returns the cluster's server of that name, or nil.
func (c *containers) find(name string) *server {
	for _, s := range c.servers() {
		if s.name == name {
			return s
		}
	}
	return nil
}

// next returns the next serial of this handle on the run, which names backups, sidecars and
// standbys: a number, after the handle's own id for an attached one, so that two processes
// never name two servers alike.
func (c *containers) next() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	if c.handle != "" {
		return strings.TrimPrefix(c.handle, c.runID+"-") + "-" + strconv.Itoa(c.seq)
	}
	return strconv.Itoa(c.seq)
}

// Detach implements cluster.Cluster: the containers outlive this process until `pgdrill down`.
func (c *containers) Detach() error {
	data, err := json.Marshal(cluster.Describe(c))
	if err != nil {
		return fmt.Errorf("encode cluster info: %w", err)
	}
	c.mu.Lock()
	c.detached, c.info = true, data
	c.mu.Unlock()
	return c.saveRecord()
}

// saveRecord writes the run's record as it is now, when the provider keeps records.
func (c *containers) saveRecord() error {
	if c.p.store == nil {
		return nil
	}
	spec, err := json.Marshal(c.spec)
	if err != nil {
		return fmt.Errorf("encode cluster spec: %w", err)
	}
	rec := runstate.Record{RunID: c.recordID(), Provider: ProviderName, Created: c.created, Owner: c.owner, Spec: spec}
	for _, s := range c.servers() {
		if !s.foreign {
			rec.Servers = append(rec.Servers, runstate.ServerRecord{Name: s.name, DataDir: s.dataDir(), Port: s.Info().Port})
		}
	}
	c.mu.Lock()
	rec.Detached, rec.Info = c.detached, c.info
	c.mu.Unlock()
	return c.p.store.Save(rec)
}

// Destroy removes every container, network and volume of the run, then its record. An attached
// handle removes what it made (its sidecars and standbys, their data) and leaves the run alone.
func (c *containers) Destroy(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx) // teardown must finish even when the run was cancelled
	if c.handle != "" {
		return c.destroyHandle(ctx)
	}
	if _, err := Sweep(ctx, c.runID); err != nil {
		return fmt.Errorf("destroy cluster %s: %w", c.runID, err)
	}
	if c.cli != nil {
		_ = c.cli.Close()
	}
	if err := c.removeRecord(); err != nil {
		return err
	}
	c.p.log.Info("cluster destroyed", "run_id", c.runID)
	return nil
}

// recordID is the id the run's record is kept under: the run's, or an attached handle's.
func (c *containers) recordID() string { return cmp.Or(c.handle, c.runID) }

// removeRecord removes the run's (or the handle's) record, when the provider keeps records.
func (c *containers) removeRecord() error {
	if c.p.store == nil {
		return nil
	}
	return c.p.store.Remove(c.recordID())
}
