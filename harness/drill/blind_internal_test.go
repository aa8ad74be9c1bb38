package drill

import (
	"time"

	"github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/locate"
)

var _ = ginkgo.Describe("comparing what a blind restore located with the truth", func() {
	at := time.Date(2026, 12, 2, 10, 40, 0, 0, time.UTC)
	truth := incident.Record{
		Affected: []incident.Tenant{{ID: 1, Shard: 0}, {ID: 2, Shard: 0}, {ID: 3, Shard: 1}},
		Harms: []incident.Harm{
			{Shard: 0, Tenants: []int64{1, 2}, XID: "700", LSN: "0/3000000", CommitLSN: "0/3100000", Time: at,
				RecoverTo: cluster.RecoveryTarget{XID: "700"}},
			{Shard: 1, Tenants: []int64{3}, XID: "710", LSN: "0/5000000", CommitLSN: "0/5100000", Time: at.Add(time.Second),
				RecoverTo: cluster.RecoveryTarget{XID: "710"}},
		},
	}

	ginkgo.It("counts the victims found, missed and innocent, and how far off a wrong target is in WAL and in time", func() {
		found := []locate.Finding{
			{Shard: 0, Harms: []locate.Harm{{XID: 700, FirstLSN: 0x3000000, Time: at, Tenants: map[int64]int{1: 10, 4: 2}}},
				RecoverTo: cluster.RecoveryTarget{XID: "700"}},
			// Shard 1's first harm went unseen: the target is a later transaction, 64 KiB and 250 ms on.
			{Shard: 1, Harms: []locate.Harm{{XID: 712, FirstLSN: 0x5010000, Time: at.Add(1250 * time.Millisecond), Tenants: map[int64]int{3: 5}}},
				RecoverTo: cluster.RecoveryTarget{XID: "712"}},
		}
		l := compareLocated(truth, locate.Record(truth, found), found)
		Expect(l.Found).To(ConsistOf(int64(1), int64(3), int64(4)))
		Expect(l.Missed).To(ConsistOf(int64(2)))
		Expect(l.Innocent).To(ConsistOf(int64(4)))
		Expect(l.TargetsExact).To(BeFalse())
		Expect(l.Off).To(ConsistOf(TargetOff{Shard: 1, True: cluster.RecoveryTarget{XID: "710"}, Found: cluster.RecoveryTarget{XID: "712"},
			WALBytes: 0x10000, Time: 250 * time.Millisecond}))
		Expect(l.summary(len(truth.Affected))).To(ContainSubstring("shard 1: 65536 bytes of WAL (250ms) late"))
	})

	ginkgo.It("says a harmed shard where nothing was found is missing, and a target in the WAL before the harm's commit is exact", func() {
		lsn := func(s string) backup.LSN {
			l, err := backup.ParseLSN(s)
			Expect(err).NotTo(HaveOccurred())
			return l
		}
		dropped := truth
		dropped.Harms = []incident.Harm{truth.Harms[0], truth.Harms[1]}
		dropped.Harms[0].RecoverTo = cluster.RecoveryTarget{LSN: "0/3000000"}
		found := []locate.Finding{
			{Shard: 0, Harms: []locate.Harm{{FirstLSN: lsn("0/3000100"), DroppedDatabases: []uint32{5}, Time: at, Tenants: map[int64]int{1: 1, 2: 1}}},
				RecoverTo: cluster.RecoveryTarget{LSN: "0/3000100"}},
			{Shard: 1},
		}
		l := compareLocated(dropped, locate.Record(dropped, found), found)
		Expect(l.TargetsExact).To(BeFalse())
		Expect(l.Off).To(ConsistOf(HaveField("Missing", true)))
		Expect(l.Off[0].Shard).To(Equal(1))
		Expect(l.Missed).To(ConsistOf(int64(3)))
	})
})
