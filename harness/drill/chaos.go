package drill

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/fault"
	"github.com/pgdrill/pgdrill/harness/fault/netproxy"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/scenarios"
)

// faultStepTimeout bounds each lifecycle step of a fault (a heal that hangs must not hang the
// drill).
const faultStepTimeout = time.Minute

// chaos injects a scenario's faults into a drill at the phases they are attached to, heals them
// when their time is up and, at the latest, before the final verification (the Jepsen rule), and
// cleans every one up at teardown, whatever happened. It is the restore's Watcher, so faults can
// strike inside a restore's phases.
type chaos struct {
	r   *run
	log *slog.Logger
	// net is the fault proxy in front of every server, when a fault needs it; nil otherwise.
	net *netproxy.Network

	mu     sync.Mutex
	faults []*scheduled
	// wg tracks the goroutines that inject and heal.
	wg sync.WaitGroup
	// closed is set once the verification is about to begin: nothing strikes after it; stop
	// closes then, so that a fault still waiting for its offset gives up.
	closed bool
	stop   chan struct{}
}

// scheduled is one fault of the scenario and what became of it.
type scheduled struct {
	spec    scenarios.Fault
	trigger scenarios.Trigger
	// fired is set when its trigger came; failer once the target was known.
	fired  bool
	failer *fault.Failer
	// phaseEnd is closed when the phase the fault is attached to ends (During, and a fault
	// still waiting for its target to start).
	phaseEnd chan struct{}
	shard    int
	// problem says why the fault never struck, when it did not.
	problem string
	// struck, when set, is closed once the fault is confirmed or failed to be (injectNow waits
	// for it).
	struck chan struct{}
	// inPlace is closed once the fault is injected or failed to be: a drill step whose fault
	// strikes as it begins waits for it before its work begins.
	inPlace chan struct{}
	// injected and healed bound the fault's band on the timeline.
	injected, healed time.Time
}

// newChaos returns the chaos of r's scenario; nil when it has no faults, unless r is a game day:
// there a facilitator may inject faults by hand (injectNow), network faults included, so the
// fault proxy is in front of every server from the start.
func newChaos(r *run, gameDay bool) *chaos {
	specs := r.cfg.Scenario.Spec.Faults
	if len(specs) == 0 && !gameDay {
		return nil
	}
	ch := &chaos{r: r, log: r.log, stop: make(chan struct{})}
	if gameDay {
		ch.net = netproxy.New(r.log)
	}
	for _, f := range specs {
		ch.faults = append(ch.faults, &scheduled{spec: f, trigger: f.Trigger(), shard: -1, inPlace: make(chan struct{})})
		if f.Kind.Network() && ch.net == nil {
			ch.net = netproxy.New(r.log)
		}
	}
	return ch
}

// wrap returns the cluster every client of the drill uses: c itself, or c behind the fault proxy
// when a fault needs it.
func (ch *chaos) wrap(c cluster.Cluster) cluster.Cluster {
	if ch == nil || ch.net == nil || c == nil {
		return c
	}
	return ch.net.Cluster(c)
}

// began is told that a drill step or a restore phase began, working on servers (and, in a
// runbook's phases, its restorer); faults attached to it strike. It returns what closes once
// each fault due as the phase begins (no offset) is in place.
func (ch *chaos) began(phase string, shard int, servers []cluster.Server, restorer *restore.Restorer) []chan struct{} {
	if ch == nil {
		return nil
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return nil
	}
	var due []chan struct{}
	for _, f := range ch.faults {
		if f.fired || f.trigger.Phase != phase || !onShard(f.spec, shard) {
			continue
		}
		f.fired, f.shard, f.phaseEnd = true, shard, make(chan struct{})
		if f.trigger.Offset == 0 {
			due = append(due, f.inPlace)
		}
		ch.wg.Add(1)
		go func() {
			defer ch.wg.Done()
			ch.strike(f, servers, restorer)
		}()
	}
	return due
}

// beganStep is told that a drill step began, and returns once every fault due as it begins is
// in place, so that the step's work meets it, as `at: STEP` says: racing the injection, a backup
// check that listed the archive before a WAL segment was removed found nothing broken. A restore
// phase does not wait (PhaseBegan): there a fault may wait for what the phase starts, a sidecar
// to kill or a tenant to be merged.
func (ch *chaos) beganStep(step string) {
	for _, c := range ch.began(step, -1, nil, nil) {
		<-c
	}
}

// onShard reports whether a fault whose target names a shard is attached to that shard's phase:
// a restore phase runs once per shard.
func onShard(f scenarios.Fault, shard int) bool {
	kind, index, _ := scenarios.ParseTarget(f.TargetOrDefault())
	return shard < 0 || index < 0 || kind != "shard" || index == shard
}

// ended is told that a drill step or a restore phase ended: faults attached to it with During
// heal.
func (ch *chaos) ended(phase string, shard int) {
	if ch == nil {
		return
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for _, f := range ch.faults {
		if f.fired && f.trigger.Phase == phase && f.shard == shard && !isClosed(f.phaseEnd) {
			close(f.phaseEnd)
		}
	}
}

// closeOnce closes c unless it is closed; c is only ever closed by one goroutine.
func closeOnce(c chan struct{}) {
	if !isClosed(c) {
		close(c)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// PhaseBegan implements restore.Watcher.
func (ch *chaos) PhaseBegan(p restore.PhaseStart) {
	ch.began(StepRestore+"."+p.Name, p.Shard, p.Servers, p.Restorer)
}

// PhaseEnded implements restore.Watcher.
func (ch *chaos) PhaseEnded(name string, shard int) { ch.ended(StepRestore+"."+name, shard) }

// strike waits for the fault's offset, finds its target, injects it and confirms it took
// effect, and heals it when its time is up.
func (ch *chaos) strike(f *scheduled, servers []cluster.Server, restorer *restore.Restorer) {
	ctx := context.Background() // the drill's ctx may end; the lifecycle must still run to cleanup
	struck := func() {
		if f.struck != nil {
			closeOnce(f.struck)
		}
	}
	defer struck()
	defer closeOnce(f.inPlace)
	if f.trigger.Offset > 0 {
		// A restore phase's fault strikes inside the phase or not at all; a drill step's strikes
		// its offset after the step began, however soon the step ended.
		due := time.NewTimer(f.trigger.Offset)
		defer due.Stop()
		var end <-chan struct{}
		if f.spec.During != "" || strings.HasPrefix(f.trigger.Phase, StepRestore+".") {
			end = f.phaseEnd
		}
		select {
		case <-due.C:
		case <-end:
			ch.missed(f, fmt.Sprintf("phase %s ended before the fault was due (%s after it began)", f.trigger.Phase, f.trigger.Offset))
			return
		case <-ch.stop:
			ch.missed(f, fmt.Sprintf("the verification began before the fault was due (%s after %s began)", f.trigger.Offset, f.trigger.Phase))
			return
		}
	}
	flt, err := ch.build(f, servers, restorer)
	if err != nil {
		ch.missed(f, err.Error())
		return
	}
	fl := fault.New(flt)
	ch.mu.Lock()
	f.failer = fl
	ch.mu.Unlock()
	step := func(do func(context.Context) error) error {
		sctx, cancel := context.WithTimeout(ctx, faultStepTimeout)
		defer cancel()
		return do(sctx)
	}
	if err := step(fl.Setup); err != nil {
		ch.log.Warn("fault could not be set up", "fault", fl.Describe(), "err", err)
		return
	}
	ch.log.Warn("injecting fault", "fault", fl.Describe(), "at", f.trigger.String())
	ch.mu.Lock()
	f.injected = time.Now()
	ch.mu.Unlock()
	err = step(fl.Inject)
	closeOnce(f.inPlace)
	if err != nil {
		ch.log.Warn("fault could not be injected", "fault", fl.Describe(), "err", err)
		return
	}
	if err := step(fl.Confirm); err != nil {
		ch.log.Warn("fault did not take effect", "fault", fl.Describe(), "err", err)
	}
	struck()
	var healAfter <-chan time.Time
	if d := f.spec.For.Std(); d > 0 {
		healAfter = time.After(d - time.Since(f.injected))
	}
	var phaseEnd <-chan struct{}
	if f.spec.During != "" {
		phaseEnd = f.phaseEnd
	}
	if healAfter == nil && phaseEnd == nil {
		if f.spec.Kind != scenarios.FaultRestorerCrash {
			return // healed before the verification (healAll)
		}
		// The restore waits for its restorer to be back: without a `for`, the responder runs the
		// runbook again at once.
		healAfter = time.After(0)
	}
	select {
	case <-healAfter:
	case <-phaseEnd:
	}
	ch.heal(f)
}

// missed records that a fault never struck, and why.
func (ch *chaos) missed(f *scheduled, why string) {
	ch.log.Warn("fault did not strike", "kind", f.spec.Kind, "at", f.trigger.String(), "why", why)
	ch.mu.Lock()
	f.problem = why
	ch.mu.Unlock()
}

// heal heals one fault, once.
func (ch *chaos) heal(f *scheduled) {
	ch.mu.Lock()
	fl, done := f.failer, !f.healed.IsZero()
	ch.mu.Unlock()
	if fl == nil || done {
		return
	}
	rec := fl.Record()
	if rec.State != fault.StateInjected && rec.State != fault.StateConfirmed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), faultStepTimeout)
	defer cancel()
	if err := fl.Heal(ctx); err != nil {
		ch.log.Warn("fault could not be healed", "fault", fl.Describe(), "err", err)
	} else {
		ch.log.Info("fault healed", "fault", fl.Describe())
	}
	ch.mu.Lock()
	f.healed = time.Now()
	ch.mu.Unlock()
}

// healAll waits for every fault that is striking, heals every one still injected, and lets no
// fault strike after it: what runs before the final verification. A fault whose phase never came
// is recorded as never struck.
func (ch *chaos) healAll() {
	if ch == nil {
		return
	}
	ch.mu.Lock()
	if !ch.closed {
		close(ch.stop)
	}
	ch.closed = true
	for _, f := range ch.faults {
		if f.fired && !isClosed(f.phaseEnd) {
			close(f.phaseEnd) // a fault still waiting for its offset or its target gives up
		}
	}
	ch.mu.Unlock()
	ch.wg.Wait()
	for _, f := range ch.faults {
		if !f.fired && f.problem == "" {
			f.problem = "phase " + f.trigger.Phase + " never began, so the fault never struck"
		}
		ch.heal(f)
	}
}

// cleanup heals and cleans up every fault and closes the fault proxy: what teardown runs on
// every way out.
func (ch *chaos) cleanup() []error {
	if ch == nil {
		return nil
	}
	ch.healAll()
	var errs []error
	for _, f := range ch.faults {
		if f.failer == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), faultStepTimeout)
		if err := f.failer.Cleanup(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	if ch.net != nil {
		if err := ch.net.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close fault proxy: %w", err))
		}
	}
	return errs
}

// target finds the server a fault breaks.
func (ch *chaos) target(f *scheduled, servers []cluster.Server) (cluster.Server, int, error) {
	r := ch.r
	kind, index, err := scenarios.ParseTarget(f.spec.TargetOrDefault())
	if err != nil {
		return nil, -1, err
	}
	switch kind {
	case "catalog":
		return r.c.Catalog(), -1, nil
	case "sidecar":
		for _, s := range servers {
			if s.Role() == cluster.RoleSidecar {
				return s, f.shard, nil
			}
		}
		return nil, -1, fmt.Errorf("phase %s works on no sidecar here (the strategy restores from elsewhere)", f.trigger.Phase)
	case "standby":
		if index >= len(r.standbys) {
			return nil, -1, fmt.Errorf("the drill has no standby-%d", index)
		}
		return r.standbys[index], index, nil
	}
	if index < 0 {
		index = ch.harmedShard(f)
	}
	shards := r.c.Shards()
	if index >= len(shards) {
		return nil, -1, fmt.Errorf("the cluster has no shard-%d", index)
	}
	return shards[index], index, nil
}

// harmedShard is the shard "shard" means: the shard of the restore phase the fault is attached
// to, else the first shard the incident harmed, else shard 0.
func (ch *chaos) harmedShard(f *scheduled) int {
	if f.shard >= 0 {
		return f.shard
	}
	best := -1
	if inc := ch.r.out.Incident; inc != nil {
		for _, t := range inc.Affected {
			if best < 0 || t.Shard < best {
				best = t.Shard
			}
		}
	}
	return max(best, 0)
}

// build makes the fault f's spec describes, aimed at its target.
func (ch *chaos) build(f *scheduled, servers []cluster.Server, restorer *restore.Restorer) (fault.Fault, error) {
	if f.spec.Kind == scenarios.FaultRestorerCrash {
		if restorer == nil {
			return nil, fmt.Errorf("phase %s runs no runbook to crash (the strategy is %s)", f.trigger.Phase, ch.r.out.Strategy)
		}
		return &fault.RestorerCrash{Restorer: restorer, Tenants: f.spec.Tenants}, nil
	}
	s, shard, err := ch.target(f, servers)
	if err != nil {
		return nil, err
	}
	spec := f.spec
	switch {
	case spec.Kind == scenarios.FaultKill:
		return &fault.Kill{Server: s}, nil
	case spec.Kind == scenarios.FaultPause:
		return &fault.Pause{Server: s}, nil
	case spec.Kind == scenarios.FaultRestart:
		return &fault.Restart{Server: s, Immediate: spec.Immediate}, nil
	case spec.Kind == scenarios.FaultDiskFull:
		return &fault.DiskFull{Server: s}, nil
	case spec.Kind.Network():
		return ch.networkFault(spec, s)
	case spec.Kind.Storage():
		if shard < 0 || shard >= len(ch.r.prot.Backups) {
			return nil, fmt.Errorf("%s has no base backup to break", s.Name())
		}
		b := ch.r.prot.Backups[shard]
		switch spec.Kind {
		case scenarios.FaultWALMissing, scenarios.FaultWALCorrupt:
			return &fault.WALSegment{Files: ch.r.c.Files(), Server: s, Backup: b, Corrupt: spec.Kind == scenarios.FaultWALCorrupt, Segment: spec.Segment}, nil
		default:
			return &fault.BackupFile{Files: ch.r.c.Files(), Backup: b, Truncate: spec.Kind == scenarios.FaultBackupTruncate, File: spec.File}, nil
		}
	}
	return nil, fmt.Errorf("fault %s is not injected", spec.Kind)
}

// records returns what became of every fault, in the scenario's order.
func (ch *chaos) records() []FaultOutcome {
	if ch == nil {
		return nil
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var out []FaultOutcome
	for i, f := range ch.faults {
		o := FaultOutcome{ID: i + 1, Kind: string(f.spec.Kind), Target: f.spec.TargetOrDefault(), Trigger: f.trigger.String(),
			Description: string(f.spec.Kind) + " " + f.spec.TargetOrDefault(), Problem: f.problem}
		if f.failer != nil {
			rec := f.failer.Record()
			o.Description, o.State, o.Confirmed, o.Healed, o.Steps = rec.Description, rec.State, rec.Confirmed, rec.Healed, rec.Steps
			o.Problem = cmp.Or(rec.Problem, o.Problem)
		}
		if !f.injected.IsZero() {
			o.Injected, o.InjectedAt = f.injected.Sub(ch.r.start), f.injected.UTC()
		}
		if !f.healed.IsZero() {
			o.HealedAt = f.healed.Sub(ch.r.start)
		}
		out = append(out, o)
	}
	return out
}

// FaultOutcome is what became of one fault of the scenario: what the timeline draws as a band,
// the reports list, and the judge weighs.
type FaultOutcome struct {
	// ID numbers the fault in the drill, from 1: what `pgdrill fault heal` names.
	ID      int    `json:"id"`
	Kind    string `json:"kind"`
	Target  string `json:"target"`
	Trigger string `json:"at"`
	// Description says what the fault did to what ("kill -9 sidecar-shard-1-1").
	Description string      `json:"description"`
	State       fault.State `json:"state,omitempty"`
	// Confirmed says it was observed to take effect; Healed that its target was observed to work
	// again.
	Confirmed bool         `json:"confirmed"`
	Healed    bool         `json:"healed"`
	Steps     []fault.Step `json:"steps,omitempty"`
	// Injected and HealedAt are offsets from the drill's start; zero when it did not happen.
	Injected   time.Duration `json:"injected"`
	InjectedAt time.Time     `json:"injected_at,omitzero"`
	HealedAt   time.Duration `json:"healed_at"`
	// Problem says what went wrong: why it never struck, or its first failed step.
	Problem string `json:"problem,omitempty"`
}

// networkFault makes a network fault of spec in front of s.
func (ch *chaos) networkFault(spec scenarios.Fault, s cluster.Server) (fault.Fault, error) {
	p, err := ch.net.Proxy(s)
	if err != nil {
		return nil, err
	}
	return &fault.Network{Proxy: p, Server: s, Kind: fault.NetworkKind(spec.Kind), Latency: spec.Latency.Std(), Jitter: spec.Jitter.Std(),
		Rate: spec.Rate, After: spec.After.Std()}, nil
}

// ByHand is the trigger of a fault a game day's facilitator injects (`pgdrill fault inject`).
const ByHand = "by hand"

// injectNow strikes a fault at once — one a game day's facilitator injects by hand — and returns
// what became of it once it was seen to take effect (or failed to): it heals after spec.For, by
// healByHand, or before the verification, whichever comes first, and is weighed in the score like
// any fault of the scenario.
func (ch *chaos) injectNow(spec scenarios.Fault) (FaultOutcome, error) {
	ch.mu.Lock()
	switch {
	case ch.closed:
		ch.mu.Unlock()
		return FaultOutcome{}, errors.New("inject fault: the game day is being scored, and no fault strikes after its verification began")
	case spec.Kind.Network() && ch.net == nil:
		ch.mu.Unlock()
		return FaultOutcome{}, errors.New("inject fault: this drill has no fault proxy in front of its servers")
	}
	f := &scheduled{spec: spec, trigger: scenarios.Trigger{Phase: ByHand}, fired: true, shard: -1,
		phaseEnd: make(chan struct{}), struck: make(chan struct{}), inPlace: make(chan struct{})}
	ch.faults = append(ch.faults, f)
	id := len(ch.faults)
	ch.wg.Add(1)
	ch.mu.Unlock()
	go func() {
		defer ch.wg.Done()
		ch.strike(f, nil, nil)
	}()
	<-f.struck
	return ch.records()[id-1], nil
}

// healByHand heals fault id (from 1) now, and returns what became of it.
func (ch *chaos) healByHand(id int) (FaultOutcome, error) {
	ch.mu.Lock()
	if id < 1 || id > len(ch.faults) {
		n := len(ch.faults)
		ch.mu.Unlock()
		return FaultOutcome{}, fmt.Errorf("heal fault %d: the drill has %d fault(s); `pgdrill fault list` numbers them", id, n)
	}
	f := ch.faults[id-1]
	fl, healed := f.failer, !f.healed.IsZero()
	ch.mu.Unlock()
	if healed {
		return FaultOutcome{}, fmt.Errorf("heal fault %d: it is healed already", id)
	}
	if fl == nil || !slices.Contains([]fault.State{fault.StateInjected, fault.StateConfirmed}, fl.Record().State) {
		return FaultOutcome{}, fmt.Errorf("heal fault %d: it is not injected", id)
	}
	ch.heal(f)
	return ch.records()[id-1], nil
}
