"""Spam checks the comment screen asks besides its own rules: Akismet (`akismet.py`, the service
WordPress.com uses, on when AKISMET_KEY is set) and the learned filter (`filter.py`, trained on this
site's own moderator verdicts). Nothing is imported here, so importing one of them costs only
that one; app/moderation/screen.py asks both, and app/moderation/actions.py tells both what a
moderator decided.
"""
