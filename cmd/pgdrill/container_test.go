package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/container"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/image"
)

var _ = Describe("the container provider from the command line", Label(drilltest.Docker, drilltest.Slow), func() {
	BeforeEach(func(ctx context.Context) {
		drilltest.NeedImage(ctx, image.DefaultTag, "pgdrill image build", "drills on containers were not run")
	})

	It("runs a blind drill end to end on containers, with a runbook's pgdrill restore attached to the run, and leaves nothing", func() {
		dir := GinkgoT().TempDir()
		file := filepath.Join(dir, "small.yaml")
		runbook := strings.Replace(smallDrill, "  objectives:", "  detection: {delay: 200ms, knowledge: blind}\n  restore: {strategy: runbook, runbook: {command: pgdrill restore --strategy pitr-sidecar}}\n  objectives:", 1)
		runbook = strings.Replace(runbook, "  detection: {delay: 200ms}\n", "", 1)
		Expect(os.WriteFile(file, []byte(runbook), 0o600)).To(Succeed())
		s := pgdrill("run", file, "--provider", "container", "--out", filepath.Join(dir, "reports"), "-o", "json").Wait(5 * time.Minute)
		Expect(s).To(gexec.Exit(0), string(s.Err.Contents()))
		var outcomes []struct {
			RunID    string `json:"run_id"`
			Provider string
			Verdict  string
			Incident struct {
				Knowledge string
				Located   struct{ Missed []int64 }
			}
		}
		Expect(json.Unmarshal(s.Out.Contents(), &outcomes)).To(Succeed())
		Expect(outcomes).To(HaveLen(1))
		Expect(outcomes[0]).To(And(HaveField("Provider", "container"), HaveField("Verdict", "PASS")))
		Expect(outcomes[0].Incident.Knowledge).To(Equal("blind"))
		Expect(s.Err).To(gbytes.Say("located the harm from the ticket"), "the runbook's pgdrill restore searched, attached to the run")
		Expect(labelledBy(outcomes[0].RunID)).To(BeEmpty(), "no container, network or volume of the run is left")
		Expect(filepath.Join(stateDir, outcomes[0].RunID+".json")).NotTo(BeAnExistingFile())
	})

	It("reaps what a SIGKILLed pgdrill up --provider container left, at the next start", func() {
		up := pgdrill("up", "--provider", "container", "--shards", "1", "-o", "json", "--tenants", "0")
		d := describeFrom(up)
		up.Kill().Wait(10 * time.Second)
		expectReachable(d) // the containers outlive their killed owner...
		Expect(labelledBy(d.RunID)).NotTo(BeEmpty())
		Expect(finish("ls").Out).To(gbytes.Say(d.RunID + `\s+container\s+orphaned`))
		again := pgdrill("up", "--provider", "container", "--shards", "1", "--for", "10ms", "--tenants", "0").Wait(3 * time.Minute)
		Expect(again).To(gexec.Exit(0))
		Expect(labelledBy(d.RunID)).To(BeEmpty(), "...until the next start reaps them")
		for _, s := range servers(d) {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), time.Second)
			if err == nil {
				c.Close()
			}
			Expect(err).To(HaveOccurred(), "port of %s should be closed", s.Name)
		}
		Expect(filepath.Join(stateDir, d.RunID+".json")).NotTo(BeAnExistingFile())
	})

	It("tears down a detached container run with pgdrill down", func() {
		up := finish("up", "--provider", "container", "--shards", "1", "--detach", "-o", "json", "--tenants", "0")
		Expect(up).To(gexec.Exit(0))
		var d cluster.Description
		Expect(json.Unmarshal(up.Out.Contents(), &d)).To(Succeed())
		Expect(d.Provider).To(Equal("container"))
		Expect(finish("ls").Out).To(gbytes.Say(d.RunID + `\s+container\s+detached`))
		down := finish("down", d.RunID)
		Expect(down).To(gexec.Exit(0))
		Expect(labelledBy(d.RunID)).To(BeEmpty())
	})
})

// labelledBy lists the containers, networks and volumes carrying run's label.
func labelledBy(run string) []string {
	GinkgoHelper()
	var left []string
	for _, args := range [][]string{{"ps", "-a", "-q"}, {"network", "ls", "-q"}, {"volume", "ls", "-q"}} {
		out, err := exec.Command("docker", append(args, "--filter", "label="+container.LabelRun+"="+run)...).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		left = append(left, strings.Fields(string(out))...)
	}
	return left
}

var _ = Describe("the container provider on another engine", Label(drilltest.Docker, drilltest.Slow, drilltest.Root), func() {
	It("drills on a Docker engine of another network reached over TCP through DOCKER_HOST, keeping nothing on pgdrill's own filesystem", func(ctx context.Context) {
		drilltest.NeedImage(ctx, image.DefaultTag, "pgdrill image build", "a drill on another engine was not run")
		if os.Geteuid() != 0 {
			Skip("starting a Docker engine of the spec's own needs root")
		}
		dockerd := drilltest.NeedTool("dockerd", "apt-get install docker.io", "a drill on another engine was not run")
		drilltest.NeedTool("ip", "apt-get install iproute2", "a drill on another engine was not run")
		host := startEngine(ctx, dockerd)

		dir := GinkgoT().TempDir()
		file := filepath.Join(dir, "small.yaml")
		Expect(os.WriteFile(file, []byte(smallDrill), 0o600)).To(Succeed())
		cmd := exec.Command(binary, "run", file, "--provider", "container", "--out", filepath.Join(dir, "reports"), "-o", "json")
		cmd.Env = append(os.Environ(), "PGDRILL_STATE_DIR="+stateDir, "PGDRILL_WORK_ROOT="+workRoot, "DOCKER_HOST="+host)
		s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(s, 5*time.Minute).Should(gexec.Exit(0))
		var outcomes []struct {
			RunID    string `json:"run_id"`
			Provider string
			Verdict  string
		}
		Expect(json.Unmarshal(s.Out.Contents(), &outcomes)).To(Succeed())
		Expect(outcomes).To(ConsistOf(And(HaveField("Provider", "container"), HaveField("Verdict", "PASS"))))
		Expect(labelledBy(outcomes[0].RunID)).To(BeEmpty(), "nothing ran on the default engine")
		Expect(s.Err).To(gbytes.Say("cluster up"), "the run's cluster came up on the other engine")
		out, err := exec.Command("docker", "-H", host, "ps", "-a", "-q", "--filter", "label="+container.LabelRun).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(strings.Fields(string(out))).To(BeEmpty(), "and went from it")
	})
})

// startEngine starts a Docker engine of the spec's own, as another machine's would be: in a
// network namespace of its own (its own loopback, firewall and bridges), reached over TCP at the
// far end of a veth pair, with its own data and state directories; loads pgdrill's image into
// it; and stops it (that very process, and the namespace's holder, nothing else) when the spec
// ends. It returns the engine's DOCKER_HOST.
func startEngine(ctx context.Context, dockerd string) string {
	GinkgoHelper()
	root, err := os.MkdirTemp("", "pgdrill-engine-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, root) // registered first: runs last, once the engine is gone
	holder, err := gexec.Start(exec.Command("unshare", "--net", "sleep", "infinity"), GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { holder.Kill().Wait(10 * time.Second) })
	pid := strconv.Itoa(holder.Command.Process.Pid)
	Eventually(func() error { return exec.Command("nsenter", "-t", pid, "-n", "true").Run() }).Should(Succeed())

	link := fmt.Sprintf("pgd%04x", os.Getpid()&0xffff)
	subnet := fmt.Sprintf("10.231.%d", os.Getpid()%250)
	ip := func(args ...string) {
		GinkgoHelper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "ip %s: %s", strings.Join(args, " "), out)
	}
	ip("link", "add", link+"h", "type", "veth", "peer", "name", link+"n")
	DeferCleanup(func() { _ = exec.Command("ip", "link", "del", link+"h").Run() }) // gone with the namespace, else here
	ip("link", "set", link+"n", "netns", pid)
	ip("addr", "add", subnet+".1/30", "dev", link+"h")
	ip("link", "set", link+"h", "up")
	Expect(exec.Command("nsenter", "-t", pid, "-n", "sh", "-c",
		`ip link set lo up && ip addr add "$1"/30 dev "$2" && ip link set "$2" up`, "sh", subnet+".2", link+"n").Run()).To(Succeed())

	conf := filepath.Join(root, "daemon.json")
	Expect(os.WriteFile(conf, []byte("{}"), 0o600)).To(Succeed())
	host := "tcp://" + subnet + ".2:2375"
	engine, err := gexec.Start(exec.Command("nsenter", "-t", pid, "-n", dockerd, "--config-file", conf,
		"--data-root", filepath.Join(root, "data"), "--exec-root", filepath.Join(root, "exec"), "--pidfile", filepath.Join(root, "pid"),
		"-H", host, "--tls=false"), GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { engine.Terminate().Wait(time.Minute) }) // it unmounts what it mounted on the way out
	Eventually(func() error { return exec.Command("docker", "-H", host, "info").Run() }, time.Minute, 100*time.Millisecond).Should(Succeed())
	load := exec.CommandContext(ctx, "sh", "-c", `docker save "$1" | docker -H "$2" load`, "sh", image.DefaultTag, host)
	out, err := load.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(out))
	return host
}
