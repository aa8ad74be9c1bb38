package runstate

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Process identifies a process across pid reuse: the pid plus its start time in clock ticks
// since boot (field 22 of /proc/PID/stat).
type Process struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// Self identifies the calling process.
func Self() (Process, error) { return Identify(os.Getpid()) }

// Identify reads the identity of a running process.
func Identify(pid int) (Process, error) {
	start, err := startTime(pid)
	if err != nil {
		return Process{}, err
	}
	return Process{PID: pid, StartTime: start}, nil
}

// Alive reports whether the very process p (not a later one reusing its pid) still runs.
// A zombie counts as gone.
func (p Process) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	start, err := startTime(p.PID)
	if err != nil || start != p.StartTime {
		return false
	}
	state, err := processState(p.PID)
	return err == nil && state != 'Z' && state != 'X'
}

// CommandLine returns the process's argv.
func CommandLine(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, fmt.Errorf("read command line of %d: %w", pid, err)
	}
	data = bytes.TrimRight(data, "\x00")
	return strings.Split(string(data), "\x00"), nil
}

// statFields returns the fields of /proc/PID/stat after the command name, which may itself hold
// spaces and parentheses; fields[0] is the state (field 3 of the man page).
func statFields(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return nil, fmt.Errorf("parse stat of %d: no command name", pid)
	}
	return strings.Fields(string(data[end+1:])), nil
}

func startTime(pid int) (uint64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	const startTimeField = 22 - 3
	if len(f) <= startTimeField {
		return 0, fmt.Errorf("parse stat of %d: too few fields", pid)
	}
	v, err := strconv.ParseUint(f[startTimeField], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse start time of %d: %w", pid, err)
	}
	return v, nil
}

func processState(pid int) (byte, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	if len(f) == 0 || f[0] == "" {
		return 0, fmt.Errorf("parse state of %d: empty", pid)
	}
	return f[0][0], nil
}

// ProcessGroup returns the process group id of pid (field 5 of /proc/PID/stat).
func ProcessGroup(pid int) (int, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	const pgrpField = 5 - 3
	if len(f) <= pgrpField {
		return 0, fmt.Errorf("parse stat of %d: too few fields", pid)
	}
	return strconv.Atoi(f[pgrpField])
}

// Children returns the pids of pid's children (zombies included, until they are reaped).
func Children(pid int) []int { return parents()[pid] }

// Descendants returns the pids of every live descendant of pid (children first, then theirs).
// Postgres backends make themselves session leaders, so a server is signalled as a whole by
// walking its process tree, not its process group.
func Descendants(pid int) []int {
	parents := parents()
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range parents[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// parents maps every pid to its children, as /proc shows them now.
func parents() map[int][]int {
	parents := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := statFields(child)
		const ppidField = 4 - 3
		if err != nil || len(f) <= ppidField {
			continue
		}
		if ppid, err := strconv.Atoi(f[ppidField]); err == nil {
			parents[ppid] = append(parents[ppid], child)
		}
	}
	return parents
}
