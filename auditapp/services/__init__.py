"""Domain logic: functions taking a session and plain arguments, shared by web, CLI, scheduler."""
