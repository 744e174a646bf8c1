"""What is proved, apart from the machinery that proves it: the obligations (one module each, as observers), the
policy language and its rules, assumptions and vector slots, contracts, waivers and verdicts.
"""
