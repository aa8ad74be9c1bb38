package restore

import (
	"context"
	"errors"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/incident"
)

var _ = Describe("perShard", func() {
	rec := incident.Record{
		Affected: []incident.Tenant{{ID: 30, Shard: 1}, {ID: 10, Shard: 0}, {ID: 20, Shard: 2}},
		Harms:    []incident.Harm{{Shard: 0, Tenants: []int64{10}}, {Shard: 1, Tenants: []int64{30}}, {Shard: 2, Tenants: []int64{20}}},
	}

	It("returns what every shard committed with the error that stopped the others", func(ctx context.Context) {
		failed := errors.New("shard 1 failed")
		out, err := perShard(ctx, rec, func(ctx context.Context, shard int, harms []incident.Harm) ([]TenantResult, error) {
			Expect(harms).To(ConsistOf(HaveField("Shard", shard)))
			if shard == 1 {
				return nil, failed
			}
			return []TenantResult{{ID: harms[0].Tenants[0], Shard: shard}}, nil
		})
		Expect(err).To(MatchError(failed))
		Expect(out).To(HaveExactElements(HaveField("ID", int64(10)), HaveField("ID", int64(20))))
	})

	It("refuses a shard the record has no harm on before any shard starts", func(ctx context.Context) {
		broken := rec
		broken.Harms = rec.Harms[:2]
		_, err := perShard(ctx, broken, func(context.Context, int, []incident.Harm) ([]TenantResult, error) {
			Fail("no shard may start")
			return nil, nil
		})
		Expect(err).To(MatchError("restore shard 2: the incident record has no harm on it"))
	})
})
