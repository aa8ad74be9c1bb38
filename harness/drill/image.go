package drill

import (
	"context"
	"errors"

	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/image"
)

// ImageStatus is what the Docker engine holds under an image tag (image.Status).
type ImageStatus = image.Status

// BuildImage builds the Postgres image the container provider runs and tags it tag (default
// image.DefaultTag), in a directory under the work root: `pgdrill image build`. With ifMissing, an
// image of that tag built from this pgdrill's recipe is kept as it is. A missing tool or engine is
// invalid input, with what to install or start.
func (h *Host) BuildImage(ctx context.Context, tag string, ifMissing bool) (ImageStatus, error) {
	spec := image.DefaultSpec()
	if tag != "" {
		spec.Tag = tag
	}
	if ifMissing {
		st, err := image.Inspect(ctx, spec)
		if err == nil && st.Current {
			h.log.Info("image already built from this recipe", "tag", st.Tag, "recipe", st.Recipe)
			return st, nil
		}
	}
	st, err := image.Build(ctx, spec, h.workRoot(), h.log)
	if errors.Is(err, image.ErrNoMmdebstrap) || errors.Is(err, image.ErrNoEngine) {
		return st, exitcode.With(err, exitcode.InvalidInput)
	}
	return st, exitcode.With(err, exitcode.HarnessError)
}
