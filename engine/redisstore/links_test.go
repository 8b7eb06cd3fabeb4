package redisstore

import (
	"testing"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/redisstore/redistest"
	"github.com/kairoshq/kairos/engine/storetest"
)

func TestLinks(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	open := func(t *testing.T) engine.LinkStore { return mustOpen(t, Config{URL: url, Prefix: prefix}) }
	storetest.RunLinks(t, open, open)
}
