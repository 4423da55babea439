"""Moderation: the rules that screen a comment (screen.py, rules.py, bans.py), what moderators
do (actions.py), their mail (notify.py) and the audit log (models.py)."""
