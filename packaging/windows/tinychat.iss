; TinyChat installer for Windows (Inno Setup 6.3+). packaging/release.py runs:
;   iscc /DAppVersion=0.1.0 /DSourceDir=dist\tinychat /DOutputDir=dist /DRepoDir=. packaging\windows\tinychat.iss
;
; Per-user install (no administrator rights): %LOCALAPPDATA%\Programs\TinyChat, a Start menu entry and, if
; chosen, a desktop shortcut. TinyChat keeps its conversations, settings, models and logs in
; %LOCALAPPDATA%\TinyChat (platformdirs); uninstalling keeps them unless the user says otherwise, so a
; reinstall or an update finds everything again.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef RepoDir
  #define RepoDir "..\.."
#endif
#ifndef SourceDir
  #define SourceDir RepoDir + "\dist\tinychat"
#endif
#ifndef OutputDir
  #define OutputDir RepoDir + "\dist"
#endif

[Setup]
; The AppId identifies TinyChat across versions (updates replace, never duplicate): never change it.
AppId={{6B1E2C3A-8F47-4D2B-9A61-3C5E7D9F0B24}
AppName=TinyChat
AppVersion={#AppVersion}
AppVerName=TinyChat {#AppVersion}
AppPublisher=TinyChat
AppComments=Offline chat with TinyLlama
DefaultDirName={autopf}\TinyChat
DefaultGroupName=TinyChat
DisableProgramGroupPage=yes
DisableDirPage=auto
PrivilegesRequired=lowest
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#OutputDir}
OutputBaseFilename=TinyChat-{#AppVersion}-setup
SetupIconFile={#RepoDir}\assets\tinychat.ico
UninstallDisplayIcon={app}\tinychat.exe
UninstallDisplayName=TinyChat
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; An update while TinyChat runs: ask to close it rather than leave half-replaced files.
CloseApplications=yes
RestartApplications=no

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; A previous version's bundled libraries must not linger next to the new ones.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\TinyChat"; Filename: "{app}\tinychat.exe"; Comment: "Offline chat with TinyLlama"
Name: "{autodesktop}\TinyChat"; Filename: "{app}\tinychat.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\tinychat.exe"; Description: "{cm:LaunchProgram,TinyChat}"; Flags: nowait postinstall skipifsilent

[Code]
const
  DataPrompt = 'Also delete your TinyChat conversations, settings and downloaded models?' + #13#10#13#10 +
               '%s' + #13#10#13#10 + 'Choose No to keep them for a later installation.';

{ Where TinyChat keeps user data: platformdirs' user_data_dir("TinyChat", appauthor=False) and the config,
  cache and log folders, which all live under it on Windows. }
function UserDataDir(): String;
begin
  Result := ExpandConstant('{localappdata}\TinyChat');
end;

{ Silent uninstalls keep the data unless run with /DELETEUSERDATA=yes. }
function ShouldDeleteUserData(Dir: String): Boolean;
begin
  if UninstallSilent() then
    Result := CompareText(ExpandConstant('{param:DELETEUSERDATA|no}'), 'yes') = 0
  else
    Result := MsgBox(Format(DataPrompt, [Dir]), mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Dir: String;
begin
  if CurUninstallStep = usPostUninstall then
  begin
    Dir := UserDataDir();
    if DirExists(Dir) and ShouldDeleteUserData(Dir) then
      DelTree(Dir, True, True, True);
  end;
end;
