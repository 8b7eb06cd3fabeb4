package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kairoshq/kairos/model"
)

// TuneState is a search's pick, kept so that the next search on the same
// data starts from it (SearchConfig.Starts).
type TuneState struct {
	// Dataset identifies the data the pick was made on.
	Dataset string `json:"dataset"`
	// Params are the picked hyperparameters (Iterations included) and
	// Blend the popularity prior fitted with them.
	Params model.Params `json:"params"`
	Blend  model.Blend  `json:"blend"`
	// Validation holds the pick's validation metrics.
	Validation Metrics   `json:"validation"`
	Created    time.Time `json:"created"`
}

// LoadTuneState reads a pick saved by Save; (nil, nil) when the file does
// not exist.
func LoadTuneState(path string) (*TuneState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("eval: read tune state: %w", err)
	}
	var st TuneState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("eval: tune state %s: %w", path, err)
	}
	if err := st.Params.Validate(); err != nil {
		return nil, fmt.Errorf("eval: tune state %s: %w", path, err)
	}
	return &st, nil
}

// Save writes the pick to path (directories created; replaced
// atomically).
func (st *TuneState) Save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("eval: save tune state: %w", err)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("eval: save tune state: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("eval: save tune state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("eval: save tune state: %w", err)
	}
	return nil
}
