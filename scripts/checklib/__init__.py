"""What the check scripts share, in one package: the report (report.py), loopback HTTP (net.py), the one way to
start a gateway and the processes around it (gateway.py), the sandbox's providers (providers.py), tenants and the
customers' side of onboarding (onboarding.py), what must hold after a run (invariants.py), and wrk (loadtest.py).

    from checklib import Checks, free_port, log, wait_for, Gateway
"""
from .report import CHECKS, FIGURES, Checks, Fatal, log, log_tail, progress, run_main
from .net import HOST, TRANSIENT, Answer, call, free_port, quietly, retrying, serve_in_background, wait_for
from .providers import INVOICEXPRESS, MAGNIFINANCE, PROVIDER_BY_ID, PROVIDERS, WRAPP, kinds, nif, random_nif
from .gateway import (
    CALLER_TIMEOUT_MS, GATEWAYS, LATE_DELAY_MS, PROVIDER_TIMEOUT_SECONDS, QUICK, QUICK_TIMINGS, ROOT, Gateway, Process,
    SimulatedProviders, SimulatorControls, clean_environment, cleanup_all, start_gateway,
)
from .onboarding import Counter, Driver, converge, create, describe, listed, make_existing, note, provider_of, spec
from .invariants import (
    check_acknowledged_exist, check_all_active, check_credentials, check_history, check_integrity,
    check_one_per_external_id, check_provider_calls, provider_figures,
)
from .loadtest import MAX_ERROR_SHARE, judge, wrk

__all__ = [
    "CHECKS", "FIGURES", "Checks", "Fatal", "log", "log_tail", "progress", "run_main",
    "HOST", "TRANSIENT", "Answer", "call", "free_port", "quietly", "retrying", "serve_in_background", "wait_for",
    "INVOICEXPRESS", "MAGNIFINANCE", "PROVIDER_BY_ID", "PROVIDERS", "WRAPP", "kinds", "nif", "random_nif",
    "CALLER_TIMEOUT_MS", "GATEWAYS", "LATE_DELAY_MS", "PROVIDER_TIMEOUT_SECONDS", "QUICK", "QUICK_TIMINGS", "ROOT", "Gateway",
    "Process", "SimulatedProviders", "SimulatorControls", "clean_environment", "cleanup_all", "start_gateway",
    "Counter", "Driver", "converge", "create", "describe", "listed", "make_existing", "note", "provider_of", "spec",
    "check_acknowledged_exist", "check_all_active", "check_credentials", "check_history", "check_integrity",
    "check_one_per_external_id", "check_provider_calls", "provider_figures",
    "MAX_ERROR_SHARE", "judge", "wrk",
]
