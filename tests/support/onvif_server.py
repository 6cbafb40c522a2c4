#!/usr/bin/python3
"""A stand-in ONVIF camera (Profile S device and media services) for `vitrine probe`'s tests:
no real ONVIF camera is on this machine. It checks the WS-Security UsernameToken digest
exactly as a camera does (Base64(SHA-1(nonce + created + password))) and answers
GetCapabilities, GetProfiles (a 1920x1080 main stream, a 640x360 substream, a JPEG snapshot
profile) and GetStreamUri with SOAP 1.2 bodies shaped like a Hikvision camera's.
usage: onvif_server.py PORT USER PASSWORD RTSP_BASE   (RTSP_BASE: rtsp://127.0.0.1:8554)"""
import base64, hashlib, re, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port, user, password, rtsp = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ENV = ('<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
       'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
       'xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:ter="http://www.onvif.org/ver10/error">'
       '<env:Body>%s</env:Body></env:Envelope>')
PROFILES = [("Profile_1", "mainStream", "H264", 1920, 1080, 25, "/Streaming/Channels/101"),
            ("Profile_2", "subStream", "H264", 640, 360, 15, "/Streaming/Channels/102"),
            ("Profile_3", "thirdStream", "JPEG", 352, 288, 1, "/Streaming/Channels/103")]

def tag(xml, name):
    m = re.search(r"<(?:\w+:)?%s\b[^>]*>([^<]*)</" % name, xml)
    return m.group(1) if m else None

def authorized(xml):
    nonce, created, digest = tag(xml, "Nonce"), tag(xml, "Created"), tag(xml, "Password")
    if tag(xml, "Username") != user or None in (nonce, created, digest):
        return False
    want = base64.b64encode(hashlib.sha1(base64.b64decode(nonce) + created.encode() + password.encode()).digest())
    return want.decode() == digest

def profile(p):
    token, name, enc, w, h, fps, _ = p
    return ('<trt:Profiles token="%s" fixed="true"><tt:Name>%s</tt:Name><tt:VideoEncoderConfiguration token="V%s">'
            '<tt:Name>v</tt:Name><tt:Encoding>%s</tt:Encoding><tt:Resolution><tt:Width>%d</tt:Width><tt:Height>%d</tt:Height>'
            '</tt:Resolution><tt:RateControl><tt:FrameRateLimit>%d</tt:FrameRateLimit><tt:BitrateLimit>2048</tt:BitrateLimit>'
            '</tt:RateControl></tt:VideoEncoderConfiguration></trt:Profiles>') % (token, name, token, enc, w, h, fps)

class Camera(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, status, body):
        data = (ENV % body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        xml = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8", "replace")
        if not authorized(xml):
            return self.answer(400, '<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>'
                               'ter:NotAuthorized</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">'
                               'Sender not Authorized</env:Text></env:Reason></env:Fault>')
        if self.path == "/onvif/device_service" and "GetCapabilities" in xml:
            return self.answer(200, '<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media><tt:XAddr>'
                               'http://127.0.0.1:%d/onvif/Media</tt:XAddr></tt:Media></tds:Capabilities>'
                               '</tds:GetCapabilitiesResponse>' % port)
        if self.path == "/onvif/Media" and "GetProfiles" in xml:
            return self.answer(200, '<trt:GetProfilesResponse>%s</trt:GetProfilesResponse>'
                               % "".join(profile(p) for p in PROFILES))
        if self.path == "/onvif/Media" and "GetStreamUri" in xml:
            token = tag(xml, "ProfileToken")
            for p in PROFILES:
                if p[0] == token:
                    return self.answer(200, '<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>%s%s</tt:Uri>'
                                       '<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect></trt:MediaUri>'
                                       '</trt:GetStreamUriResponse>' % (rtsp, p[6]))
        return self.answer(400, '<env:Fault><env:Reason><env:Text xml:lang="en">Action not supported</env:Text>'
                           '</env:Reason></env:Fault>')

srv = HTTPServer(("127.0.0.1", port), Camera)
print("onvif on 127.0.0.1:%d" % port, flush=True)
srv.serve_forever()
