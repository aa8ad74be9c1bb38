package image_test

import (
	"testing"

	"github.com/pgdrill/pgdrill/harness/drilltest"
)

func TestImage(t *testing.T) { drilltest.RunSpecs(t, "image") }
