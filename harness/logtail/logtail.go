// Package logtail quotes the end of a tool's output or a server's log in an error message: the
// lines that say why, without the thousand before them.
package logtail

import "strings"

// Last returns the last n lines of s, without its trailing newlines.
func Last(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
