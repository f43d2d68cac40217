package als

import (
	"errors"

	"github.com/liftlab/lift/experiment"
)

func errorsAs(err error, e **experiment.Error) bool { return errors.As(err, e) }
