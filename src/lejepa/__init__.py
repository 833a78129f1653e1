"""LeJEPA: SIGReg, the statistical tests behind it and the LeJEPA loss.

    from lejepa import SIGReg, LeJEPALoss, stats

The loss core (``stats``, ``sigreg``, ``loss``) depends on torch only.
"""

from lejepa import stats
from lejepa.loss import LeJEPALoss
from lejepa.sigreg import SIGReg

__all__ = ["SIGReg", "LeJEPALoss", "stats"]
__version__ = "0.1.0"
