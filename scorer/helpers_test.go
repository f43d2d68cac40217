package scorer

import (
	"errors"

	"github.com/liftlab/lift/experiment"
)

func asError(err error, e **experiment.Error) bool { return errors.As(err, e) }
