package incident_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/incident"
)

var _ = Describe("a row's key", func() {
	It("tells apart keys whose text values hold commas, and the server encodes it the same", func(ctx context.Context) {
		a, b := []string{"a,b", "c"}, []string{"a", "b,c"}
		Expect(incident.RowKey(a)).NotTo(Equal(incident.RowKey(b)))

		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
		conn := drilltest.Connect(ctx, c.Shards()[0].DSN())
		for _, key := range [][]string{a, b, {"1001", "Smith, Inc-3 ünïcode"}} {
			var got string
			Expect(conn.QueryRow(ctx, "SELECT "+incident.RowKeySQL("r", []string{"x", "y"})+" FROM (SELECT $1::text AS x, $2::text AS y) r",
				key[0], key[1]).Scan(&got)).To(Succeed())
			Expect(got).To(Equal(incident.RowKey(key)))
		}
	})
})
