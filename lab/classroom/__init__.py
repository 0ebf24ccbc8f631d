"""Classroom mode: the teacher's password, the class's limits and challenge, and the class leaderboard."""
