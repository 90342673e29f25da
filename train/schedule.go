package train

import (
	"fmt"
	"math"
)

// Learning-rate schedules, the values of Config.Schedule.
const (
	// ScheduleStep divides the rate by 10 every Config.StepEpochs epochs.
	ScheduleStep = "step"
	// SchedulePlateau is the paper's rule: divide the rate by 10 when the
	// test error has not improved for Config.Patience evaluations.
	SchedulePlateau = "plateau"
	// ScheduleNone keeps the rate constant.
	ScheduleNone = "none"
)

// Schedule is the learning-rate schedule's state. It is part of the resume
// state, so its fields are exported for JSON.
type Schedule struct {
	Kind       string  `json:"kind"`
	BaseLR     float64 `json:"base_lr"`
	LR         float64 `json:"lr"`          // the rate the next step uses
	StepEpochs int     `json:"step_epochs"` // ScheduleStep: epochs between divisions
	Patience   int     `json:"patience"`    // SchedulePlateau: evaluations without improvement
	MinLR      float64 `json:"min_lr"`      // SchedulePlateau: the rate is not divided below this
	BestErr    float64 `json:"best_err"`    // SchedulePlateau: lowest test top-1 error seen
	BadEvals   int     `json:"bad_evals"`   // SchedulePlateau: evaluations since BestErr improved
	Drops      int     `json:"drops"`       // number of ÷10 applied so far
}

// newSchedule returns the schedule that cfg describes, at its start.
func newSchedule(cfg Config) (Schedule, error) {
	s := Schedule{Kind: cfg.Schedule, BaseLR: cfg.LR, LR: cfg.LR, StepEpochs: cfg.StepEpochs,
		Patience: cfg.Patience, MinLR: cfg.LR * 1e-3, BestErr: 2} // 2: above any error rate; JSON has no Inf
	switch s.Kind {
	case ScheduleNone:
	case ScheduleStep:
		if s.StepEpochs < 1 {
			return s, fmt.Errorf("schedule %q needs step_epochs >= 1, got %d", s.Kind, s.StepEpochs)
		}
	case SchedulePlateau:
		if s.Patience < 1 {
			return s, fmt.Errorf("schedule %q needs patience >= 1, got %d", s.Kind, s.Patience)
		}
	default:
		return s, fmt.Errorf("unknown schedule %q (want %s, %s or %s)", s.Kind, ScheduleStep, SchedulePlateau, ScheduleNone)
	}
	return s, nil
}

// EpochEnd updates the rate after an epoch (counted from 0) has finished
// and been evaluated with test top-1 error testErr (NaN if no test split).
// It reports whether the rate changed.
func (s *Schedule) EpochEnd(epoch int, testErr float64) bool {
	old := s.LR
	switch s.Kind {
	case ScheduleStep:
		s.Drops = (epoch + 1) / s.StepEpochs
		s.LR = s.BaseLR * math.Pow(0.1, float64(s.Drops))
	case SchedulePlateau:
		if math.IsNaN(testErr) {
			break
		}
		if testErr < s.BestErr {
			s.BestErr, s.BadEvals = testErr, 0
			break
		}
		s.BadEvals++
		if s.BadEvals >= s.Patience && s.LR*0.1 >= s.MinLR {
			s.LR *= 0.1
			s.Drops++
			s.BadEvals = 0
		}
	}
	return s.LR != old
}
