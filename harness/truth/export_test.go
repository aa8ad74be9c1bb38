package truth

import "os"

// FileOf hands a spec the file under a RowFile, to change it as an intruder would.
func FileOf(r *RowFile) *os.File { return r.f }
