package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/pgdrill/pgdrill/harness/runstate"
)

// Sweep removes every container, network and volume labelled with runID (every pgdrill run's,
// when runID is empty) and returns how many objects it removed. It touches nothing without the
// label: what pgdrill did not start stays.
func Sweep(ctx context.Context, runID string) (int, error) {
	return sweep(ctx, LabelRun, runID)
}

// sweep removes every container, network and volume whose label key is value (that has the
// label at all, when value is empty).
func sweep(ctx context.Context, key, value string) (int, error) {
	runID := value // what errors name
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return 0, fmt.Errorf("sweep run %s: %w", runID, err)
	}
	defer cli.Close()
	label := key
	if value != "" {
		label += "=" + value
	}
	f := make(client.Filters).Add("label", label)
	n := 0
	var errs []error
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return n, fmt.Errorf("sweep run %s: list containers: %w", runID, err)
	}
	for _, c := range cs.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID[:12], err))
			continue
		}
		n++
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return n, fmt.Errorf("sweep run %s: list networks: %w", runID, err)
	}
	for _, nw := range ns.Items {
		if _, err := cli.NetworkRemove(ctx, nw.ID, client.NetworkRemoveOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("remove network %s: %w", nw.Name, err))
			continue
		}
		n++
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return n, fmt.Errorf("sweep run %s: list volumes: %w", runID, err)
	}
	for _, v := range vs.Items {
		if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
			continue
		}
		n++
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("sweep run %s: %w", runID, err)
	}
	return n, nil
}

// Reap removes what a container run's record names (Sweep by its run label), then the record.
// A run whose owner still runs a cluster it did not detach is refused: that cluster is in use.
func Reap(ctx context.Context, store *runstate.Store, rec runstate.Record) error {
	if rec.Provider != ProviderName {
		return fmt.Errorf("reap run %s: made by provider %q, not %q", rec.RunID, rec.Provider, ProviderName)
	}
	if rec.RunID == "" {
		return errors.New("reap a container run: its record names no run")
	}
	if !rec.Detached && rec.Owner.Alive() {
		return fmt.Errorf("reap run %s: its pgdrill process %d is still running; stop that instead", rec.RunID, rec.Owner.PID)
	}
	key := LabelRun
	if strings.Contains(rec.RunID, "-") { // an attached handle's record: RUN_ID-xxxx
		key = LabelHandle
	}
	if _, err := sweep(context.WithoutCancel(ctx), key, rec.RunID); err != nil {
		return fmt.Errorf("reap run %s: %w", rec.RunID, err)
	}
	return store.Remove(rec.RunID)
}

// ReapOrphans reaps every container run recorded in store whose pgdrill process died without
// tearing down and that was not detached on purpose, and returns their ids.
func ReapOrphans(ctx context.Context, store *runstate.Store, log *slog.Logger) ([]string, error) {
	recs, err := store.List()
	if err != nil {
		return nil, fmt.Errorf("reap orphaned container runs: %w", err)
	}
	return runstate.ReapOrphaned(recs, ProviderName, func(rec runstate.Record) error { return Reap(ctx, store, rec) }, log)
}
