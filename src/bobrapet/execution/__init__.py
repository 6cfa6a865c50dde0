"""bobrapet.execution: the data of the executor seam, below the engine and the executors.

``request`` holds :class:`~bobrapet.execution.request.ExecutionRequest` (one attempt to run),
:class:`~bobrapet.execution.request.ExecutionResult` (its outcome) and ``build_env``;
``secrets`` holds :class:`~bobrapet.execution.secrets.StepSecrets`; ``effects`` the effects
port (:class:`~bobrapet.execution.effects.StepEffects`, an attempt's EffectClaims); ``triggers``
the triggers port (:class:`~bobrapet.execution.triggers.StepTriggers`, an attempt's
``ctx.trigger_story`` calls). The pure engine builds
requests and reads results through this package, so it never imports
:mod:`bobrapet.executors` (an import-linter contract forbids it); executors re-export the
types. Like :mod:`bobrapet.sdk`, nothing heavy is imported here.
"""
