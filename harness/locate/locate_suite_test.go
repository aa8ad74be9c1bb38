package locate_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"

	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestLocate(t *testing.T) { drilltest.RunSpecs(t, "locate") }

var provider *local.Provider

var _ = BeforeSuite(func(ctx context.Context) { provider = drilltest.NewLocalProvider(ctx) })
