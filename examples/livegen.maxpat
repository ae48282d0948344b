{
 "patcher": {
  "fileversion": 1,
  "appversion": {
   "major": 8,
   "minor": 5,
   "revision": 0,
   "architecture": "x64",
   "modernui": 1
  },
  "classnamespace": "box",
  "rect": [
   100.0,
   100.0,
   800.0,
   480.0
  ],
  "bglocked": 0,
  "openinpresentation": 0,
  "default_fontsize": 12.0,
  "gridsize": [
   15.0,
   15.0
  ],
  "boxes": [
   {
    "box": {
     "id": "comment-1",
     "maxclass": "comment",
     "patching_rect": [
      20,
      10,
      720,
      22
     ],
     "numinlets": 1,
     "numoutlets": 0,
     "text": "livegen OSC example: XY and notes to `livegen play` on UDP 9000; feedback (MIDI/UI moves, meters, errors) on 9001. Changes you send are not echoed back. The subscription is a 60 s lease: [metro 20000] renews it."
    }
   },
   {
    "box": {
     "id": "obj-send",
     "maxclass": "newobj",
     "patching_rect": [
      20,
      420,
      150,
      22
     ],
     "numinlets": 1,
     "numoutlets": 0,
     "text": "udpsend 127.0.0.1 9000"
    }
   },
   {
    "box": {
     "id": "obj-x",
     "maxclass": "slider",
     "patching_rect": [
      20,
      60,
      200,
      20
     ],
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "floatoutput": 1,
     "size": 1.0,
     "orientation": 1,
     "parameter_enable": 0
    }
   },
   {
    "box": {
     "id": "obj-y",
     "maxclass": "slider",
     "patching_rect": [
      20,
      100,
      200,
      20
     ],
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "floatoutput": 1,
     "size": 1.0,
     "orientation": 1,
     "parameter_enable": 0
    }
   },
   {
    "box": {
     "id": "obj-pak",
     "maxclass": "newobj",
     "patching_rect": [
      20,
      140,
      80,
      22
     ],
     "numinlets": 2,
     "numoutlets": 1,
     "text": "pak 0. 0.",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-xymsg",
     "maxclass": "message",
     "patching_rect": [
      20,
      180,
      130,
      22
     ],
     "numinlets": 2,
     "numoutlets": 1,
     "text": "/livegen/xy $1 $2",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-ks",
     "maxclass": "kslider",
     "patching_rect": [
      260,
      60,
      336,
      53
     ],
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "int",
      "int"
     ],
     "parameter_enable": 0
    }
   },
   {
    "box": {
     "id": "obj-pack",
     "maxclass": "newobj",
     "patching_rect": [
      260,
      140,
      60,
      22
     ],
     "numinlets": 2,
     "numoutlets": 1,
     "text": "pack 0 0",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-notemsg",
     "maxclass": "message",
     "patching_rect": [
      260,
      180,
      130,
      22
     ],
     "numinlets": 2,
     "numoutlets": 1,
     "text": "/livegen/note $1 $2",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-lb",
     "maxclass": "newobj",
     "patching_rect": [
      620,
      60,
      60,
      22
     ],
     "numinlets": 1,
     "numoutlets": 1,
     "text": "loadbang",
     "outlettype": [
      "bang"
     ]
    }
   },
   {
    "box": {
     "id": "obj-renew",
     "maxclass": "newobj",
     "patching_rect": [
      700,
      60,
      90,
      22
     ],
     "numinlets": 2,
     "numoutlets": 1,
     "text": "metro 20000",
     "outlettype": [
      "bang"
     ]
    }
   },
   {
    "box": {
     "id": "obj-sub",
     "maxclass": "message",
     "patching_rect": [
      620,
      100,
      150,
      22
     ],
     "numinlets": 2,
     "numoutlets": 1,
     "text": "/livegen/subscribe 9001",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-status",
     "maxclass": "message",
     "patching_rect": [
      620,
      140,
      110,
      22
     ],
     "numinlets": 2,
     "numoutlets": 1,
     "text": "/livegen/status",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-recv",
     "maxclass": "newobj",
     "patching_rect": [
      20,
      240,
      100,
      22
     ],
     "numinlets": 1,
     "numoutlets": 1,
     "text": "udpreceive 9001",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-route",
     "maxclass": "newobj",
     "patching_rect": [
      20,
      280,
      480,
      22
     ],
     "numinlets": 1,
     "numoutlets": 5,
     "text": "route /livegen/xy /livegen/meter/load /livegen/meter/voices /livegen/error",
     "outlettype": [
      "",
      "",
      "",
      "",
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-unpack",
     "maxclass": "newobj",
     "patching_rect": [
      20,
      320,
      80,
      22
     ],
     "numinlets": 1,
     "numoutlets": 2,
     "text": "unpack 0. 0.",
     "outlettype": [
      "float",
      "float"
     ]
    }
   },
   {
    "box": {
     "id": "obj-setx",
     "maxclass": "message",
     "patching_rect": [
      20,
      360,
      50,
      22
     ],
     "numinlets": 2,
     "numoutlets": 1,
     "text": "set $1",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-sety",
     "maxclass": "message",
     "patching_rect": [
      90,
      360,
      50,
      22
     ],
     "numinlets": 2,
     "numoutlets": 1,
     "text": "set $1",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-load",
     "maxclass": "flonum",
     "patching_rect": [
      180,
      320,
      60,
      22
     ],
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "",
      "bang"
     ],
     "parameter_enable": 0
    }
   },
   {
    "box": {
     "id": "obj-voices",
     "maxclass": "number",
     "patching_rect": [
      260,
      320,
      50,
      22
     ],
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "",
      "bang"
     ],
     "parameter_enable": 0
    }
   },
   {
    "box": {
     "id": "obj-err",
     "maxclass": "newobj",
     "patching_rect": [
      340,
      320,
      120,
      22
     ],
     "numinlets": 1,
     "numoutlets": 0,
     "text": "print livegen-error"
    }
   },
   {
    "box": {
     "id": "obj-other",
     "maxclass": "newobj",
     "patching_rect": [
      480,
      320,
      90,
      22
     ],
     "numinlets": 1,
     "numoutlets": 0,
     "text": "print livegen"
    }
   },
   {
    "box": {
     "id": "comment-2",
     "maxclass": "comment",
     "patching_rect": [
      180,
      350,
      360,
      22
     ],
     "numinlets": 1,
     "numoutlets": 0,
     "text": "load / voices meters; x and y follow MIDI and other clients"
    }
   }
  ],
  "lines": [
   {
    "patchline": {
     "source": [
      "obj-x",
      0
     ],
     "destination": [
      "obj-pak",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-y",
      0
     ],
     "destination": [
      "obj-pak",
      1
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-pak",
      0
     ],
     "destination": [
      "obj-xymsg",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-xymsg",
      0
     ],
     "destination": [
      "obj-send",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-ks",
      0
     ],
     "destination": [
      "obj-pack",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-ks",
      1
     ],
     "destination": [
      "obj-pack",
      1
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-pack",
      0
     ],
     "destination": [
      "obj-notemsg",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-notemsg",
      0
     ],
     "destination": [
      "obj-send",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-lb",
      0
     ],
     "destination": [
      "obj-renew",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-renew",
      0
     ],
     "destination": [
      "obj-sub",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-sub",
      0
     ],
     "destination": [
      "obj-send",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-status",
      0
     ],
     "destination": [
      "obj-send",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-recv",
      0
     ],
     "destination": [
      "obj-route",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-route",
      0
     ],
     "destination": [
      "obj-unpack",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-route",
      1
     ],
     "destination": [
      "obj-load",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-route",
      2
     ],
     "destination": [
      "obj-voices",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-route",
      3
     ],
     "destination": [
      "obj-err",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-route",
      4
     ],
     "destination": [
      "obj-other",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      0
     ],
     "destination": [
      "obj-setx",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      1
     ],
     "destination": [
      "obj-sety",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-setx",
      0
     ],
     "destination": [
      "obj-x",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-sety",
      0
     ],
     "destination": [
      "obj-y",
      0
     ]
    }
   }
  ]
 }
}
