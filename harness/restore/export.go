package restore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/incident"
)

// LogicalExport brings each affected tenant back from its latest logical export taken before
// the harm (backup.ExportTenants): no sidecar and no WAL replay, only the export's files merged
// into the live shard.
//
// Choose it when there is no WAL archive to replay, or when restores must be quick and the data
// a tenant writes between two exports may be lost: its time grows with the size of the affected
// tenants only, and its RPO is the export's age — every write a tenant made between its export
// and the harm is gone, which the score shows as lost data. It works for every layout.
type LogicalExport struct {
	// Dir holds the exports, one subdirectory each (see backup.ReadExports).
	Dir string
	// Policy decides conflicts between exported and live rows. Default: KeepLive.
	Policy ConflictPolicy
}

// Name implements Strategy.
func (LogicalExport) Name() string { return "logical-export" }

// Restore implements Strategy.
func (s LogicalExport) Restore(ctx context.Context, env Env, rec incident.Record) (Result, error) {
	res := Result{Strategy: s.Name()}
	exports, err := backup.ReadExports(s.Dir)
	if err != nil {
		return res, err
	}
	src, err := chooseExports(exports, rec)
	if err != nil {
		return res, err
	}
	for _, t := range rec.Affected {
		e := src[t.ID]
		env.Log.Info("restoring tenant from export", "tenant", t.ID, "export", e.exp.Dir,
			"age_at_harm", e.harm.Time.Sub(e.tenant.Time))
	}
	tl := newTimeline(env)
	m := newMerger(env, rec, s.Policy, tl)
	shards := env.Cluster.Shards()
	res.Tenants, err = perShard(ctx, rec, func(ctx context.Context, shard int, harms []incident.Harm) ([]TenantResult, error) {
		var out []TenantResult
		err := tl.time(PhaseMerge, shard, func() error {
			for _, h := range harms {
				r, err := m.restore(ctx, src, shards[shard], h)
				out = append(out, r...)
				if err != nil {
					return err
				}
			}
			return nil
		})
		return out, err
	})
	return tl.result(res.Strategy, res.Tenants), err
}

// exportSource reads each tenant's rows from the export chosen for it.
type exportSource map[int64]chosenExport

// chosenExport is the export a tenant is restored from, and the harm it is restored from before.
type chosenExport struct {
	exp    backup.Export
	tenant backup.ExportedTenant
	harm   incident.Harm
}

// chooseExports picks, for every affected tenant, the newest export of this run and layout that
// holds it on its shard and whose snapshot was taken before the tenant's first harm began (its
// LSN at or before the harm's: a snapshot taken then cannot see the harm's commit).
func chooseExports(exports []backup.Export, rec incident.Record) (exportSource, error) {
	out := exportSource{}
	for _, t := range rec.Affected {
		harms := rec.HarmsOn(t.Shard)
		i := slices.IndexFunc(harms, func(h incident.Harm) bool { return slices.Contains(h.Tenants, t.ID) })
		if i < 0 {
			return nil, fmt.Errorf("choose export of tenant %d: the incident record has no harm of it", t.ID)
		}
		harm := harms[i]
		harmLSN, err := backup.ParseLSN(harm.LSN)
		if err != nil {
			return nil, fmt.Errorf("choose export of tenant %d: %w", t.ID, err)
		}
		for _, e := range slices.Backward(exports) {
			et, ok := e.Tenant(t.ID)
			if !ok || e.RunID != rec.RunID || e.Layout != rec.Layout || et.Shard != t.Shard {
				continue
			}
			lsn, err := backup.ParseLSN(et.LSN)
			if err != nil {
				return nil, fmt.Errorf("choose export of tenant %d in %s: %w", t.ID, e.Dir, err)
			}
			if lsn <= harmLSN {
				out[t.ID] = chosenExport{exp: e, tenant: et, harm: harm}
				break
			}
		}
		if _, ok := out[t.ID]; !ok {
			return nil, fmt.Errorf("choose export of tenant %d: no export of it on shard %d before the harm at %s",
				t.ID, t.Shard, harm.LSN)
		}
	}
	return out, nil
}

func (s exportSource) copyReference(_ context.Context, _ io.Writer, _ fixtures.Location, t fixtures.Table) error {
	return fmt.Errorf("read reference table %s: exports hold tenants' rows only, not the global tables a recreated tenant database needs", t.Name)
}

func (s exportSource) copyOut(_ context.Context, w io.Writer, _ *fixtures.Model, _ fixtures.Location, t fixtures.Table, tenantIDs []int64) error {
	paths := make([]string, len(tenantIDs))
	for i, id := range tenantIDs {
		c := s[id]
		j := slices.IndexFunc(c.tenant.Tables, func(et backup.ExportedTable) bool { return et.Name == t.Name })
		if j < 0 {
			return fmt.Errorf("read export of tenant %d: %s has no table %s", id, c.exp.Dir, t.Name)
		}
		paths[i] = c.exp.Path(c.tenant.Tables[j])
	}
	return concatCopies(w, paths)
}

// copySignature opens every binary COPY stream; the header goes on with 32-bit flags and the
// 32-bit length of an extension area, and the stream ends with a 16-bit field count of -1.
var copySignature = []byte("PGCOPY\n\xff\r\n\x00")

// concatCopies writes the binary COPY files at paths to w as one stream: the first file's
// header, every file's rows, one trailer. Each file is checked to be binary COPY data whole.
func concatCopies(w io.Writer, paths []string) error {
	for i, p := range paths {
		if err := copyRows(w, p, i == 0); err != nil {
			return fmt.Errorf("read export file %s: %w", p, err)
		}
	}
	if _, err := w.Write([]byte{0xff, 0xff}); err != nil {
		return fmt.Errorf("write end of rows: %w", err)
	}
	return nil
}

// copyRows writes the rows of the binary COPY file at path to w, with its header first when
// header is set, never its trailer.
func copyRows(w io.Writer, path string, header bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	head := make([]byte, len(copySignature)+8)
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head[:len(copySignature)], copySignature) {
		return errors.New("not binary COPY data")
	}
	ext := make([]byte, binary.BigEndian.Uint32(head[len(copySignature)+4:]))
	if _, err := io.ReadFull(f, ext); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	rows := st.Size() - int64(len(head)+len(ext)) - 2
	if rows < 0 {
		return errors.New("binary COPY data cut short")
	}
	if header {
		if _, err := w.Write(append(head, ext...)); err != nil {
			return err
		}
	}
	if _, err := io.CopyN(w, f, rows); err != nil {
		return err
	}
	trailer := make([]byte, 2)
	if _, err := io.ReadFull(f, trailer); err != nil || trailer[0] != 0xff || trailer[1] != 0xff {
		return errors.New("binary COPY data without its end")
	}
	return nil
}
