"""Word lists of the builtin analyzer, written for this project: emotions and their cues, intensity
modifiers, face and body words, place nouns, titles, and capitalised words that are not names.
Cues match lower-case words only, so a character named Hope or Joy is never read as an emotion."""

from __future__ import annotations

EMOTION_CUES: dict[str, tuple[str, ...]] = {
    "joy": ("happy", "happily", "joy", "joyful", "joyfully", "delighted", "delight", "glad", "laughed", "laughing",
            "laughter", "grinned", "grinning", "beamed", "beaming", "cheerful", "elated", "thrilled", "overjoyed",
            "giggled", "ecstatic", "smiled", "smiling", "jubilant", "gleeful", "merry"),
    "sadness": ("sad", "sadly", "sorrow", "sorrowful", "wept", "weeping", "tears", "tearful", "grief", "grieving",
                "mourned", "mourning", "miserable", "heartbroken", "sobbed", "sobbing", "melancholy", "despair",
                "forlorn", "lonely", "gloomy", "devastated", "crying", "wistful", "downcast"),
    "anger": ("angry", "angrily", "furious", "furiously", "rage", "raged", "fury", "snapped", "snarled", "glared",
              "glaring", "seethed", "seething", "scowled", "livid", "resentment", "resentful", "slammed", "clenched",
              "outraged", "irritated", "annoyed", "bitterly", "hissed", "yelled", "stormed", "incensed"),
    "fear": ("afraid", "fear", "feared", "fearful", "scared", "terrified", "terror", "trembled", "trembling",
             "panic", "panicked", "dread", "frightened", "horror", "horrified", "shivered", "anxious", "anxiously",
             "nervous", "nervously", "uneasy", "worried", "alarmed", "petrified", "cowered", "flinched"),
    "surprise": ("surprised", "surprise", "astonished", "shocked", "gasped", "stunned", "startled", "amazed",
                 "bewildered", "astounded", "dumbfounded", "incredulous"),
    "disgust": ("disgusted", "disgust", "revolted", "sneered", "grimaced", "nauseated", "repulsed", "loathing",
                "contempt", "recoiled"),
    "love": ("love", "loved", "tender", "tenderly", "adored", "affection", "affectionately", "embraced", "kissed",
             "cherished", "longing", "adoration", "fondly", "caressed"),
    "calm": ("calm", "calmly", "peaceful", "peacefully", "serene", "relaxed", "content", "contentment", "tranquil",
             "quietly", "steady", "composed"),
    "relief": ("relieved", "relief", "reassured", "exhaled"),
    "determination": ("determined", "resolve", "resolute", "resolutely", "steeled", "vowed", "insisted", "firmly",
                      "defiant", "defiantly", "stubborn", "unwavering", "refused"),
    "hope": ("hope", "hoped", "hopeful", "hopefully", "optimistic", "optimism", "eager", "eagerly"),
    "guilt": ("ashamed", "guilty", "guilt", "shame", "remorse", "embarrassed", "sheepishly", "regret",
              "regretted", "apologised", "apologized"),
}
CUE_EMOTION = {word: emotion for emotion, words in EMOTION_CUES.items() for word in words}

# Cues strong enough to raise the intensity on their own.
STRONG_CUES = frozenset({"terrified", "furious", "elated", "devastated", "heartbroken", "horror", "horrified", "rage",
                         "fury", "despair", "ecstatic", "sobbed", "sobbing", "petrified", "overjoyed", "livid",
                         "terror", "panic", "panicked", "outraged", "incensed", "jubilant", "loathing"})
INTENSIFIERS = frozenset({"very", "utterly", "completely", "so", "deeply", "terribly", "violently", "wildly",
                          "truly", "absolutely", "overwhelming", "overwhelmed", "uncontrollably", "screamed",
                          "shrieked", "never"})
SOFTENERS = frozenset({"slightly", "faintly", "somewhat", "mildly", "barely", "hint", "little", "almost",
                       "vaguely", "bit"})

# Valence, for transitions: a change of sign between scenes is sudden.
VALENCE = {"joy": 1, "love": 1, "calm": 1, "relief": 1, "hope": 1, "determination": 0, "surprise": 0,
           "sadness": -1, "anger": -1, "fear": -1, "disgust": -1, "guilt": -1}

TONES = {"joy": "joyful", "sadness": "somber", "anger": "tense", "fear": "ominous", "surprise": "startling",
         "disgust": "grim", "love": "romantic", "calm": "peaceful", "relief": "hopeful",
         "determination": "resolute", "hope": "hopeful", "guilt": "somber"}
NEUTRAL_TONE = "neutral"

FACE_WORDS = frozenset({"smiled", "smile", "smiling", "frowned", "frown", "frowning", "grinned", "grin", "eyes",
                        "brow", "brows", "lips", "jaw", "tears", "pale", "paled", "flushed", "blushed", "cheeks",
                        "mouth", "gaze", "stared", "glared", "winced", "scowled", "scowl", "face", "grimaced",
                        "sneered", "blinked", "teeth"})
BODY_WORDS = frozenset({"shoulders", "fists", "fist", "clenched", "trembled", "trembling", "shook", "paced", "pacing",
                        "slumped", "hands", "arms", "knees", "stiffened", "hunched", "leaned", "straightened",
                        "shrugged", "nodded", "crossed", "folded", "cowered", "flinched", "staggered", "sank",
                        "embraced", "recoiled", "stormed", "posture"})
APPEARANCE_WORDS = frozenset({"hair", "haired", "eyes", "eyed", "beard", "bearded", "wore", "wearing", "dressed",
                              "coat", "cloak", "dress", "tall", "short", "thin", "stout", "scar", "scarred",
                              "freckles", "freckled", "skin", "spectacles", "glasses", "hat", "boots", "braid",
                              "moustache", "mustache", "gown", "uniform", "jacket", "shawl", "bald", "broad",
                              "slender", "wiry", "plump", "grey", "gray", "blonde", "blond", "auburn", "red-haired",
                              "dark-haired", "silver"})

SPEECH_VERBS = ("said", "asked", "replied", "whispered", "shouted", "muttered", "cried", "answered", "called",
                "snapped", "murmured", "added", "laughed", "sighed", "yelled", "hissed", "demanded", "began",
                "continued", "insisted", "admitted", "explained", "growled", "breathed", "protested", "told")

TITLES = ("Mr", "Mrs", "Ms", "Miss", "Dr", "Doctor", "Professor", "Prof", "Captain", "Capt", "Lady", "Lord", "Sir",
          "Madam", "Madame", "King", "Queen", "Prince", "Princess", "Father", "Sister", "Brother", "Aunt", "Uncle",
          "Inspector", "Detective", "Sergeant", "Sgt", "Colonel", "General", "Master", "Mistress", "Dame",
          "Reverend", "Officer", "Lieutenant", "Commander", "Duke", "Duchess", "Count", "Countess", "Baron")

# Capitalised words that are not names wherever they stand.
NOT_NAMES = frozenset("""
I I'm I'd I'll I've He She They We You It His Her Hers Their Theirs Our Ours My Mine Your Yours Its Me Him Them Us
The A An And But Or So Yet For Nor If When While Then There Here This That These Those What Who Whom Whose Which
Where Why How After Before As At In On Of To From With Without By Into Onto Up Down Out Over Under Once Now Later
Still Even Just Only Not No Yes Oh Ah Well Perhaps Maybe Somewhere Someone Everyone Nobody Nothing Something
Everything All Some Every Each Both Neither Either Another Other Most Many Much More Few Several Such Whatever
Whoever Let Don't Didn't Can't Won't Couldn't Wouldn't Shouldn't Isn't Wasn't Weren't Aren't Hadn't Haven't It's
That's There's Here's What's Let's Nor Though Although Because Since Until Unless Whether Again Also Too Very
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August
September October November December Spring Summer Autumn Winter Christmas Easter God Heaven Hell Chapter Part
Book Prologue Epilogue Mister Sir Madam Ma'am Okay OK Hello Goodbye Good Thank Thanks Please Sorry Dear Hey Hi
Meanwhile Elsewhere Later Tomorrow Today Tonight Yesterday Morning Evening Night Afternoon Dawn Dusk Noon Midnight
One Two Three Four Five Six Seven Eight Nine Ten First Second Third Last Next Finally Suddenly Slowly Quickly
English French German Spanish Italian Latin American British North South East West Northern Southern Eastern
Western Street Road Avenue Lane Hall House Inn Tavern Station Church Castle Tower Harbor Harbour Bridge Market
Square Park Abbey Manor Keep Lighthouse Forest Woods River Lake Bay Island Mountains Mountain Valley City Town
Village Port Gate Palace Temple Cathedral Hotel Hospital School College University Museum Library Prison
Everybody Anybody Anyone Anything Nowhere Everywhere Inside Outside Behind Beside Between Beyond Above Below Near
Across Through Around Along Against Among Toward Towards Upon Within During Despite Except Like Unlike Maybe
Come Go Get Look Listen Wait Stop Run Tell Give Take Make See Watch Keep Leave Stay Help Never Always Sometimes
Mum Mom Dad Mama Papa Mother Father Grandma Grandpa Old Young Little Big Poor Dear
""".split())

# Ordinary English words that are also given names: a name only where capitalised mid-sentence,
# with a title, or attributed speech ("said Will") — never at a sentence start.
COMMON_WORD_NAMES = frozenset({"Will", "Hope", "Grace", "Faith", "Joy", "Mark", "Rose", "May", "June", "April",
                               "Art", "Bill", "Pat", "Sue", "Rob", "Max", "Frank", "Sunny", "Dawn", "Summer",
                               "Autumn", "Hunter", "Chase", "Ray", "Rich", "Drew", "Penny", "Ruby", "Amber",
                               "Iris", "Lily", "Heather", "Holly", "Ivy", "Jack", "Guy", "Sky", "Hazel", "Faye",
                               "Wade", "Miles", "Glen", "Dale", "Cliff", "Brook", "Reed", "Rusty", "Patience",
                               "Constance", "Prudence", "Charity", "Honor", "Destiny", "Harmony", "Melody"})

PLACE_NOUNS = ("kitchen", "library", "garden", "forest", "woods", "harbor", "harbour", "lighthouse", "tavern", "inn",
               "church", "chapel", "castle", "tower", "station", "market", "square", "street", "cottage", "house",
               "hall", "study", "bedroom", "office", "ship", "deck", "cabin", "beach", "shore", "cliff", "cliffs",
               "river", "bridge", "village", "town", "city", "cellar", "attic", "courtyard", "palace", "camp",
               "hospital", "school", "barn", "field", "fields", "mountain", "cave", "temple", "bar", "cafe", "café",
               "restaurant", "shop", "alley", "road", "parlor", "parlour", "ballroom", "dining room", "porch",
               "stable", "stables", "mill", "dock", "docks", "pier", "warehouse", "train", "carriage", "apartment",
               "flat", "hut", "lake", "meadow", "hill", "valley", "desert", "jungle", "island", "port", "quay",
               "greenhouse", "graveyard", "cemetery", "ruins", "abbey", "monastery", "dungeon", "throne room",
               "laboratory", "museum", "gallery", "theatre", "theater", "hotel", "prison", "courtroom",
               "classroom", "lantern room", "watch room", "orchard", "farmhouse", "manor", "marsh", "moor",
               "bakery", "forge", "smithy", "workshop", "boathouse", "lounge", "corridor", "hallway", "stairwell",
               "rooftop", "roof", "balcony", "terrace", "chamber", "bedchamber", "nursery", "ward", "clinic",
               "platform", "wharf", "market square", "tent", "clearing", "glade", "crossroads", "kitchen garden")
PLACE_SUFFIXES = frozenset({"Hall", "House", "Manor", "Street", "Road", "Lane", "Avenue", "Castle", "Tower", "Inn",
                            "Tavern", "Bridge", "Harbor", "Harbour", "Station", "Park", "Square", "Abbey", "Church",
                            "Forest", "Woods", "River", "Lake", "Bay", "Island", "Market", "Keep", "Lighthouse",
                            "Point", "Cove", "Hill", "Hills", "Valley", "Gate", "Palace", "Cathedral", "Hotel",
                            "Hospital", "College", "Academy", "Mill", "Farm", "Court", "Gardens", "Docks", "Quay",
                            "Pier", "Head", "Rock", "Moor", "Marsh", "Falls", "Spire", "Library", "Museum"})

# Openings of a paragraph that move the story in time or place (an implicit scene break).
TIME_SHIFT_OPENINGS = (
    r"the next (?:morning|day|evening|night|afternoon|week|month|year)",
    r"the following (?:morning|day|evening|night|afternoon|week|month|spring|summer|autumn|winter)",
    r"later that (?:day|night|evening|morning|afternoon|week)",
    r"(?:hours|days|weeks|months|years|minutes|moments|a (?:day|week|month|year|moment)|an hour|"
    r"(?:two|three|four|five|six|seven|ten|several|many|a few) (?:hours|days|weeks|months|years|minutes)) later",
    r"that (?:night|evening|afternoon|morning)",
    r"by (?:dawn|nightfall|morning|evening|noon|midnight|the time)",
    r"at (?:dawn|dusk|midnight|noon|daybreak|sunrise|sunset|first light)",
    r"meanwhile", r"elsewhere", r"back (?:at|in) ", r"across (?:town|the city|the river|the sea)",
    r"when (?:morning|night|evening|dawn) came", r"(?:morning|night|evening|dawn|dusk) (?:came|fell|broke)",
    r"it was (?:morning|night|evening|dawn|dusk|noon|midnight)", r"(?:on|in) the (?:morning|evening) of",
    r"in the (?:morning|evening)(?:,| )", r"the day after", r"a (?:week|month|year) (?:passed|went by)",
)
