package netproxy

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/Shopify/toxiproxy/v2/toxics"
	"golang.org/x/sys/unix"
)

// resetType names the reset toxic in Toxiproxy's registry.
const resetType = "pgdrill_reset_peer"

func init() { toxics.Register(resetType, new(resetToxic)) }

// resetToxic is Toxiproxy's reset_peer toxic made safe for a proxy that stays up: Toxiproxy's
// own stops reading once it fired, which blocks the rest of its chain for ever, and it demands
// *net.TCPConn connections (to set SO_LINGER 0 itself). This one drops everything from the
// first chunk on, ends the stream Timeout milliseconds after that chunk, and goes on draining
// until the connection is gone; the RST comes from the connections, which set SO_LINGER 0 on
// closing while a reset fault is active.
type resetToxic struct {
	Timeout int64 `json:"timeout"`
}

// resetState remembers when a link's reset is due, across the interruptions Toxiproxy makes
// when toxics are added after this one.
type resetState struct{ due time.Time }

// NewState implements toxics.StatefulToxic.
func (t *resetToxic) NewState() any { return new(resetState) }

// Pipe implements toxics.Toxic.
func (t *resetToxic) Pipe(stub *toxics.ToxicStub) {
	state := stub.State.(*resetState)
	for {
		var due <-chan time.Time
		if !state.due.IsZero() {
			due = time.After(time.Until(state.due))
		}
		select {
		case <-stub.Interrupt:
			return
		case <-due:
			stub.Close()
			for range stub.Input { // until the link's reader ends; nothing interrupts a closed stub
			}
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if state.due.IsZero() {
				state.due = time.Now().Add(time.Duration(t.Timeout) * time.Millisecond)
			}
		}
	}
}

// holdPort binds a socket to addr without listening on it, so that connection attempts are
// refused while no other socket can take the port (binding beside it needs SO_REUSEADDR, and
// the kernel hands out free ports, not bound ones); a listener may still bind beside it. It
// returns the socket, or -1.
func holdPort(addr string) (int, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return -1, fmt.Errorf("hold port: %q is not an IPv4 address and port", addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("hold port: socket: %w", err)
	}
	// Connections just closed by the proxy linger in TIME_WAIT on the port: reuse it.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("hold port: set SO_REUSEADDR: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("hold port: bind %s: %w", addr, err)
	}
	return fd, nil
}
