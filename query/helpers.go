package query

import (
	"errors"

	"github.com/replicad/replicad/filter"
)

func asFilterError(err error, fe **filter.Error) bool { return errors.As(err, fe) }
