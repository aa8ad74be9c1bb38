package drill

import (
	"context"
	"fmt"

	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/scenarios"
)

// inject breaks the cluster the way the scenario's incident says, and records exactly what it
// harmed.
func (r *run) inject(ctx context.Context) error {
	kind := r.cfg.Scenario.Spec.Incident.Kind
	switch kind {
	case scenarios.WrongIDDeletion, scenarios.PurgeNotSoftDelete:
		// A cleanup job handed site ids where it expected app-installation ids (they have the
		// same shape) hard-deletes those sites' tenants, contact data and all.
		rec, err := incident.DeleteTenants(ctx, r.c, string(kind), incidentTenants(r.victims))
		if err != nil {
			return err
		}
		r.out.Incident = &rec
		return nil
	default:
		return fmt.Errorf("inject %s: this incident kind is not implemented yet; wrong-id-deletion and purge-not-soft-delete are", kind)
	}
}
