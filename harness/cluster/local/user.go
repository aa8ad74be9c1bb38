package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// DefaultRunUser is the unprivileged account Postgres runs as when pgdrill runs as root
// (Postgres refuses to run as root). It is created when missing.
const DefaultRunUser = "pgdrill"

// RunUser is the account the servers run as.
type RunUser struct {
	Name     string
	UID, GID uint32
	// Switch is true when pgdrill must switch to this account to start processes (it runs as
	// root); false when it already is this account.
	Switch bool
}

// resolveRunUser returns the current user when not root; as root, the named account, created
// with useradd when missing.
func resolveRunUser(ctx context.Context, name string) (RunUser, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return RunUser{}, fmt.Errorf("look up current user: %w", err)
		}
		return toRunUser(u, false)
	}
	if name == "" {
		name = DefaultRunUser
	}
	if name == "root" {
		return RunUser{}, errors.New("resolve run user: Postgres refuses to run as root; choose an unprivileged user")
	}
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		cmd := exec.CommandContext(ctx, "useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name)
		out, uerr := cmd.CombinedOutput()
		// Exit status 9: another process created it meanwhile.
		var exit *exec.ExitError
		if uerr != nil && !(errors.As(uerr, &exit) && exit.ExitCode() == 9) {
			return RunUser{}, fmt.Errorf("create run user %s: %w: %s", name, uerr, out)
		}
		u, err = user.Lookup(name)
	}
	if err != nil {
		return RunUser{}, fmt.Errorf("look up run user %s: %w", name, err)
	}
	return toRunUser(u, true)
}

func toRunUser(u *user.User, switchTo bool) (RunUser, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return RunUser{}, fmt.Errorf("parse uid of %s: %w", u.Username, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return RunUser{}, fmt.Errorf("parse gid of %s: %w", u.Username, err)
	}
	return RunUser{Name: u.Username, UID: uint32(uid), GID: uint32(gid), Switch: switchTo}, nil
}

// command prepares cmd to run as the run user in a process group of its own, so that a Ctrl-C
// in pgdrill's terminal reaches pgdrill (which tears down in order) and not the servers, and so
// that a server and all its backends can be signalled as one group.
func (u RunUser) command(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if u.Switch {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID}
	}
	return cmd
}

// own gives path to the run user.
func (u RunUser) own(path string) error {
	if !u.Switch {
		return nil
	}
	if err := os.Chown(path, int(u.UID), int(u.GID)); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}

// mkdir creates a directory owned by the run user with the given mode.
func (u RunUser) mkdir(path string, mode os.FileMode) error {
	if err := os.MkdirAll(path, mode); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return u.own(path)
}
