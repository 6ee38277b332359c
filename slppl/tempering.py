"""The tempered posterior ``prior·likelihood^β`` of a NumPyro model.

The adaptive kernel's walkers explore it first (:mod:`slppl.adaptation`), as tempered SMC moves
its particles from the prior: at small ``β`` they cross between modes whose basins of attraction
prior draws would rarely hit. The likelihood is every observed site (``numpyro.factor``
included); latent sites keep their prior, so the tempered target stays proper wherever the prior
is.
"""

from numpyro.primitives import Messenger

__all__ = ["temper", "tempered_model", "BETA"]

# The keyword that carries β into the wrapped model (removed before the user's model sees it).
BETA = "_slppl_beta"


class temper(Messenger):
    """Scale the log density of observed sites by ``beta`` (NumPyro's ``scale``, likelihood only).

    Examples:
        >>> import numpyro, numpyro.distributions as dist
        >>> from numpyro.infer.util import log_density
        >>> def model():
        ...     x = numpyro.sample("x", dist.Normal(0.0, 1.0))
        ...     numpyro.sample("y", dist.Normal(x, 1.0), obs=2.0)
        >>> full, _ = log_density(model, (), {}, {"x": 0.0})
        >>> half, _ = log_density(temper(model, beta=0.5), (), {}, {"x": 0.0})
        >>> round(float(full - half), 4)   # half of log N(2; 0, 1)
        -1.4595
    """

    def __init__(self, fn=None, beta=1.0):
        self.beta = beta
        super().__init__(fn)

    def process_message(self, msg):
        # NumPyro adds each constrained site's log |Jacobian| to the unconstrained density as an
        # observed factor site named "_{site}_log_det" (numpyro.infer.util._unconstrain_reparam):
        # it belongs to the prior, and tempering it made the prior improper at β = 0.
        if msg["type"] == "sample" and msg["is_observed"] and not _is_jacobian(msg["name"]):
            msg["scale"] = self.beta if msg.get("scale") is None else self.beta * msg["scale"]


def _is_jacobian(name):
    return name.startswith("_") and name.endswith("_log_det")


def tempered_model(model):
    """``model`` taking an extra keyword ``BETA``: without it, the model itself; with it, tempered."""

    def tempered(*args, **kwargs):
        beta = kwargs.pop(BETA, None)
        if beta is None:
            return model(*args, **kwargs)
        with temper(beta=beta):
            return model(*args, **kwargs)

    return tempered
