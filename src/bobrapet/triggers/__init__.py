"""bobrapet.triggers: durable submission of StoryTriggers (reference §5.2 to §5.4).

Used by ``bobrapet trigger``, the impulses and the SDK's ``trigger_story``; the StoryTrigger
controller decides what a stored trigger becomes.
"""
