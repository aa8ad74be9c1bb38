package scenarios

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Trigger is when a fault strikes: when a phase of the drill begins, plus an offset.
type Trigger struct {
	Phase  string
	Offset time.Duration
}

// String writes t as a scenario does: "restore.merge + 2s".
func (t Trigger) String() string {
	if t.Offset == 0 {
		return t.Phase
	}
	return t.Phase + " + " + t.Offset.String()
}

// ParseTrigger reads "PHASE" or "PHASE + DURATION", PHASE one of FaultPhases.
func ParseTrigger(s string) (Trigger, error) {
	phase, offset, plus := strings.Cut(s, "+")
	t := Trigger{Phase: strings.TrimSpace(phase)}
	if msg := oneOf(t.Phase, FaultPhases()); msg != "" {
		return t, fmt.Errorf("phase %s", msg)
	}
	if plus {
		d, err := time.ParseDuration(strings.TrimSpace(offset))
		if err != nil || d < 0 {
			return t, fmt.Errorf("%q after the phase is not a duration like 2s", strings.TrimSpace(offset))
		}
		t.Offset = d
	}
	return t, nil
}

// Trigger returns when the fault strikes (At, or During's start); validation made sure it parses.
func (f Fault) Trigger() Trigger {
	t, _ := ParseTrigger(f.At + f.During) // one of them is empty
	return t
}

// TargetOrDefault returns Target, or the kind's default target when it is empty.
func (f Fault) TargetOrDefault() string {
	switch {
	case f.Target != "":
		return f.Target
	case f.Kind == FaultRestorerCrash:
		return "runbook"
	}
	return "shard"
}

// targetPattern is what a target can be.
var targetPattern = regexp.MustCompile(`^(catalog|shard|sidecar|runbook|(shard|standby)-(0|[1-9][0-9]*))$`)

// ParseTarget splits a target into its kind (catalog, shard, sidecar, standby, runbook) and its
// shard index (-1 when it names none).
func ParseTarget(target string) (kind string, index int, err error) {
	m := targetPattern.FindStringSubmatch(target)
	if m == nil {
		return "", -1, fmt.Errorf("%q is not a target: catalog, shard, shard-N, sidecar, standby-N or runbook", target)
	}
	if m[2] == "" {
		return m[1], -1, nil
	}
	n, _ := strconv.Atoi(m[3])
	return m[2], n, nil
}

// targetsOf lists the target kinds each fault kind can break.
func targetsOf(k FaultKind) []string {
	switch {
	case k == FaultRestorerCrash:
		return []string{"runbook"}
	case k == FaultDiskFull:
		return []string{"sidecar"}
	case k.Storage():
		return []string{"shard"}
	case k == FaultRestart:
		return []string{"catalog", "shard", "standby"}
	}
	return []string{"catalog", "shard", "sidecar", "standby"}
}

// validateFault checks one fault of sp, recording every problem under path.
func validateFault(sp *Spec, f Fault, path string, invalid func(field, format string, args ...any)) {
	if f.Kind == "" {
		invalid(path+".kind", "required: one of %s", strings.Join(names(FaultKinds()), ", "))
		return
	}
	if msg := oneOf(f.Kind, FaultKinds()); msg != "" {
		invalid(path+".kind", "%s", msg)
		return
	}
	var trigger Trigger
	switch {
	case f.At == "" && f.During == "":
		invalid(path+".at", "required (or during): when the fault strikes, one of %s, with an optional + DURATION", strings.Join(FaultPhases(), ", "))
	case f.At != "" && f.During != "":
		invalid(path+".during", "at and during are exclusive: at strikes once, during strikes for a phase's length")
	case f.At != "":
		t, err := ParseTrigger(f.At)
		if err != nil {
			invalid(path+".at", "%s", err)
		}
		trigger = t
	default:
		t, err := ParseTrigger(f.During)
		if err == nil && t.Offset != 0 {
			err = fmt.Errorf("during names a phase, with no offset; use at: %s and for: to strike later", t.Phase)
		}
		if err != nil {
			invalid(path+".during", "%s", err)
		}
		trigger = t
	}
	kind, index, err := ParseTarget(f.TargetOrDefault())
	switch {
	case err != nil:
		invalid(path+".target", "%s", err)
	case !slices.Contains(targetsOf(f.Kind), kind):
		invalid(path+".target", "%s cannot break %s: it breaks %s", f.Kind, f.TargetOrDefault(), strings.Join(targetsOf(f.Kind), ", "))
	case kind == "shard" && index >= sp.Cluster.Shards:
		invalid(path+".target", "%s: the cluster has %d shard(s), shard-0 to shard-%d", f.TargetOrDefault(), sp.Cluster.Shards, sp.Cluster.Shards-1)
	case kind == "standby" && sp.Protection.StandbyApplyDelay.Std() == 0:
		invalid(path+".target", "%s: the drill keeps no standby (spec.protection.standbyApplyDelay)", f.TargetOrDefault())
	case kind == "sidecar" && trigger.Phase != "restore.replay" && trigger.Phase != "restore.merge":
		invalid(path+".target", "a sidecar runs during restore.replay and restore.merge only: attach the fault to one of them")
	}
	if f.Kind == FaultRestorerCrash {
		validateRestorerCrash(sp, f, path, trigger, invalid)
	}
	if f.Kind == FaultDiskFull && sp.Restore.Strategy != PITRSidecar {
		invalid(path+".kind", "disk-full fills the disk of the sidecar pitr-sidecar recovers; spec.restore.strategy is %s", sp.Restore.Strategy)
	}
	crash := f.Kind == FaultKill || f.Kind == FaultRestart && f.Immediate
	if crash && (kind == "shard" || kind == "catalog") && !sp.Cluster.Durable {
		invalid(path+".kind", "%s crashes %s, whose throwaway settings (fsync and synchronous_commit off) lose acknowledged commits in a crash: set spec.cluster.durable: true",
			f.Kind, f.TargetOrDefault())
	}
	if f.Kind.Storage() && !sp.Protection.BaseBackup {
		invalid(path+".kind", "%s breaks the base backup chain, but spec.protection.baseBackup is off", f.Kind)
	}
	if f.Kind.Storage() && sp.Protection.PgBackRest {
		invalid(path+".kind", "%s breaks pg_basebackup chains; pgBackRest's repository is its own to check", f.Kind)
	}
	if f.For.Std() < 0 {
		invalid(path+".for", "must not be negative")
	}
	params := map[string]bool{"latency": f.Latency != 0, "jitter": f.Jitter != 0, "rate": f.Rate != 0, "after": f.After != 0,
		"immediate": f.Immediate, "segment": f.Segment != "", "file": f.File != "", "tenants": f.Tenants != 0}
	own := map[FaultKind][]string{FaultLatency: {"latency", "jitter"}, FaultBandwidth: {"rate"}, FaultReset: {"after"},
		FaultRestart: {"immediate"}, FaultWALMissing: {"segment"}, FaultWALCorrupt: {"segment"}, FaultBackupCorrupt: {"file"},
		FaultBackupTruncate: {"file"}, FaultRestorerCrash: {"tenants"}}
	for _, p := range []string{"latency", "jitter", "rate", "after", "immediate", "segment", "file", "tenants"} {
		if params[p] && !slices.Contains(own[f.Kind], p) {
			invalid(path+"."+p, "%s has no %s", f.Kind, p)
		}
	}
	if f.Latency.Std() < 0 || f.Jitter.Std() < 0 || f.After.Std() < 0 || f.Rate < 0 || f.Tenants < 0 {
		invalid(path, "latency, jitter, after, rate and tenants must not be negative")
	}
}

// validateRestorerCrash checks what a restorer-crash needs: a runbook to crash, while it
// restores, and a heal that does not wait for the restore to end (the restore waits for it).
func validateRestorerCrash(sp *Spec, f Fault, path string, trigger Trigger, invalid func(field, format string, args ...any)) {
	if sp.Restore.Strategy != RunbookStrategy {
		invalid(path+".kind", "restorer-crash crashes the runbook, but spec.restore.strategy is %s: use strategy runbook", sp.Restore.Strategy)
	}
	if f.During != "" {
		invalid(path+".during", "restorer-crash strikes once and is healed when the runbook runs again: use at (and for: how long until it does)")
	}
	if trigger.Phase != "" && !strings.HasPrefix(trigger.Phase, PhaseRestore+".") {
		invalid(path+".at", "restorer-crash strikes while the runbook restores: attach it to restore.runbook or to a phase its `pgdrill restore` journals (restore.replay, restore.merge, ...)")
	}
}

// CheckFaultByHand checks a fault a game day's facilitator injects by hand into a drill of sp
// (`pgdrill fault inject`): one of the scenario's faults, struck at once while the team restores,
// without at or during. Its error lists every problem, by field.
func CheckFaultByHand(sp *Spec, f Fault) error {
	var problems []string
	f.At = PhaseRestore
	validateFault(sp, f, "fault", func(field, format string, args ...any) {
		problems = append(problems, field+": "+fmt.Sprintf(format, args...))
	})
	switch {
	case len(problems) > 0:
		return errors.New(strings.Join(problems, "; "))
	case f.Kind == FaultRestorerCrash:
		return errors.New("fault.kind: restorer-crash crashes a drill's runbook; on a game day the team's restorer is theirs")
	}
	return nil
}
