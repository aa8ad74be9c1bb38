package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// Attach returns a handle on a container run that another pgdrill process owns (a game day's
// `pgdrill up`, or the drill whose runbook calls `pgdrill restore`), found by its record in the
// provider's store and its containers' labels, so that this process can restore into it. The
// handle reaches the run's catalog and shards but never stops, starts or signals them
// (cluster.ErrNotOwned). The sidecars and standbys it makes are its own: labelled with the run
// and with the handle (LabelHandle), recorded under the handle's id (RUN_ID-xxxx) so that they
// are reaped if this process dies, and removed by its Destroy, which leaves the run alone.
func (p *Provider) Attach(ctx context.Context, runID string) (cluster.Cluster, error) {
	if p.store == nil {
		return nil, fmt.Errorf("attach to run %s: the provider keeps no records", runID)
	}
	rec, err := p.store.Load(runID)
	if err != nil {
		return nil, fmt.Errorf("attach to run %s: %w", runID, err)
	}
	if rec.Provider != ProviderName {
		return nil, fmt.Errorf("attach to run %s: not a run of the container provider", runID)
	}
	var spec cluster.Spec
	if err := json.Unmarshal(rec.Spec, &spec); err != nil {
		return nil, fmt.Errorf("attach to run %s: read its spec: %w", runID, err)
	}
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("attach to run %s: %w", runID, err)
	}
	self, err := runstate.Self()
	if err != nil {
		return nil, fmt.Errorf("attach to run %s: %w", runID, err)
	}
	c := &containers{p: p, runID: runID, spec: spec, owner: self, created: time.Now().UTC(),
		handle: runID + "-" + hex.EncodeToString(b), volume: "pgdrill-" + runID}
	if c.cli, err = testcontainers.NewDockerClientWithOpts(ctx); err != nil {
		return nil, fmt.Errorf("attach to run %s: connect to the container engine: %w", runID, err)
	}
	if err := c.findRun(ctx, rec); err != nil {
		_ = c.cli.Close()
		return nil, fmt.Errorf("attach to run %s: %w", runID, err)
	}
	if err := c.saveRecord(); err != nil {
		_ = c.cli.Close()
		return nil, fmt.Errorf("attach to run %s: %w", runID, err)
	}
	return c, nil
}

// findRun finds the run's network, tools container, catalog and shards by their labels, with
// the ports its record names.
func (c *containers) findRun(ctx context.Context, rec runstate.Record) error {
	f := make(client.Filters).Add("label", LabelRun+"="+c.runID)
	nws, err := c.cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil || len(nws.Items) != 1 {
		return fmt.Errorf("find its network (%d found): %w", len(nws.Items), errors.Join(err, errors.New("not exactly one")))
	}
	c.network = nws.Items[0].Name
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return fmt.Errorf("reach the engine: %w", err)
	}
	defer provider.Close()
	ports := map[string]int{}
	for _, sr := range rec.Servers {
		ports[sr.Name] = sr.Port
	}
	cs, err := c.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list its containers: %w", err)
	}
	for _, item := range cs.Items {
		name := item.Labels[LabelServer]
		if item.Labels[LabelHandle] != "" {
			continue // another handle's
		}
		ctr, err := provider.ContainerFromType(ctx, item)
		if err != nil {
			return fmt.Errorf("reach container %s: %w", name, err)
		}
		if name == "tools" {
			c.tools, c.toolsID, c.image = ctr, item.ID, item.Image // its sidecars run the run's image
			continue
		}
		role, index, ok := cluster.PrimaryRole(name)
		if !ok {
			continue // the owner's own sidecars and standbys are not this handle's business
		}
		s := c.newServer(name, role, index, true)
		s.foreign, s.ctr, s.port = true, ctr, ports[name]
		if role == cluster.RoleCatalog {
			c.catalog = s
		} else {
			c.shards = append(c.shards, s)
		}
	}
	slices.SortFunc(c.shards, func(a, b *server) int { return a.index - b.index })
	if c.toolsID == "" || c.catalog == nil || len(c.shards) != c.spec.Shards {
		return fmt.Errorf("its containers hold %d of %d shards, catalog found=%t, tools found=%t; is it still starting?",
			len(c.shards), c.spec.Shards, c.catalog != nil, c.toolsID != "")
	}
	return nil
}

// destroyHandle removes what an attached handle made: its containers, their data directories in
// the run's volume, and its record.
func (c *containers) destroyHandle(ctx context.Context) error {
	var errs []error
	for _, s := range c.servers() {
		if s.foreign {
			continue
		}
		if err := s.removeContainer(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.tool(ctx, asRoot, nil, `rm -rf "$1"`, s.dataDir()); err != nil {
			errs = append(errs, fmt.Errorf("remove the data of %s: %w", s.name, err))
		}
	}
	if _, err := sweep(ctx, LabelHandle, c.handle); err != nil { // whatever a failed start left
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove what handle %s made in run %s: %w", c.handle, c.runID, err)
	}
	_ = c.cli.Close()
	return c.removeRecord()
}
