"""therapy_align: alignment research for mental-health counselling chatbots."""
